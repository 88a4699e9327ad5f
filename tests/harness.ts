// Runs the real program under Pulumi's mock engine and records what it registers: type, name,
// inputs, parent and protect flag of every resource, as the engine would receive them.
import { generateKeyPairSync, randomBytes } from "node:crypto";
import * as pulumi from "@pulumi/pulumi";

export interface Registered {
    type: string;
    name: string;
    urn: string;
    parentUrn: string;
    protect: boolean;
    custom: boolean;
    inputs: Record<string, any>;
    /** URNs of the resources it depends on (`dependsOn`, components expanded to their children). */
    dependencies: string[];
}

export interface GeneratedKey {
    privateKeyPem: string;
    publicKeyPem: string;
}

const registrations: Registered[] = [];
const inputsByName = new Map<string, Record<string, any>>();
/** Real Ed25519 material handed out for each `tls.PrivateKey`, by resource name. */
export const generatedKeys = new Map<string, GeneratedKey>();
/** What each `random.RandomPassword` produced, by resource name. */
export const generatedPasswords = new Map<string, string>();

const PROJECT = "nix-cache";
const STACK = "test";

function outputsFor(type: string, name: string, inputs: Record<string, any>): Record<string, any> {
    switch (type) {
        case "tls:index/privateKey:PrivateKey": {
            const pair = generateKeyPairSync("ed25519");
            const key = {
                privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
                publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }).toString(),
            };
            generatedKeys.set(name, key);
            return { ...inputs, ...key };
        }
        case "random:index/randomPassword:RandomPassword": {
            const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
            const result = [...randomBytes(inputs.length)].map((byte) => alphabet[byte % alphabet.length]).join("");
            generatedPasswords.set(name, result);
            return { ...inputs, result };
        }
        default:
            return inputs;
    }
}

let installed = false;

/** Installs the mocks (once per process) and wraps the monitor to see parents and protect flags. */
export async function installMocks(): Promise<void> {
    if (installed) {
        return;
    }
    installed = true;
    await pulumi.runtime.setMocks(
        {
            newResource: ({ type, name, inputs }) => {
                inputsByName.set(`${type}::${name}`, inputs);
                return { id: `${name}-id`, state: outputsFor(type, name, inputs) };
            },
            call: ({ token }) => {
                throw new Error(`unexpected invoke ${token}`);
            },
        },
        PROJECT,
        STACK,
        false,
    );
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    monitor.registerResource = (req: any, callback: (err: any, response: any) => void) =>
        register(req, (err: any, response: any) => {
            if (!err) {
                const type = req.getType();
                const name = req.getName();
                registrations.push({
                    type,
                    name,
                    urn: response.getUrn(),
                    parentUrn: req.getParent(),
                    protect: req.getProtect(),
                    custom: req.getCustom(),
                    inputs: inputsByName.get(`${type}::${name}`) ?? {},
                    dependencies: req.getDependenciesList(),
                });
            }
            callback(err, response);
        });
}

/** Sets the stack's config as `pulumi config set` would (values are strings). */
export function setConfig(config: Record<string, string>, secretKeys: string[] = []): void {
    pulumi.runtime.setAllConfig(config, secretKeys);
}

/** Forgets what was registered so far, so one test sees only its own stack. */
export function resetRegistrations(): void {
    registrations.length = 0;
}

/** Resolves an output's value (mocks run with preview = false, so every value is known). */
export function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
    return new Promise((resolve) => output.apply((value) => resolve(value)));
}

/** Waits until the program has resolved the given outputs and the engine has seen every resource. */
export async function settle(outputs: Record<string, pulumi.Output<unknown>>): Promise<Registered[]> {
    await Promise.all(Object.values(outputs).map(valueOf));
    let seen = -1;
    while (seen !== registrations.length) {
        seen = registrations.length;
        await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return [...registrations];
}

export function registeredSnapshot(): Registered[] {
    return [...registrations];
}
