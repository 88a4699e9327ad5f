// Preloaded with `node -r` by tools/benchStartup.ts into a process that then runs Pulumi's own
// Node.js runtime entry point (@pulumi/pulumi/cmd/run), so the program is loaded exactly as
// `pulumi up` loads it, with Pulumi's mock engine in place of the real one. Plain CommonJS: a
// TypeScript loader here would change how the program itself gets compiled.
//
// At exit it prints one JSON line: how many resources were registered, when the last one was (ms
// since the process started, performance.timeOrigin, and CPU ms used by then), how ts-node
// compiled TypeScript, and the serialized code of any dynamic providers.
"use strict";
const { generateKeyPairSync } = require("node:crypto");
const { writeSync } = require("node:fs");
const pulumi = require("@pulumi/pulumi");

let registered = 0;
let lastRegistrationMs = 0;
/** The serialized code of dynamic providers, as the engine would store and later run it. */
const dynamicProviders = [];
/** CPU time (user + system, all threads) spent by then: less disturbed by other processes. */
let lastRegistrationCpuMs = 0;

// Outputs the real providers would return where the program computes from them.
function outputsFor(type, inputs) {
    if (type === "tls:index/privateKey:PrivateKey") {
        const pair = generateKeyPairSync("ed25519");
        return {
            ...inputs,
            privateKeyPem: pair.privateKey.export({ type: "pkcs8", format: "pem" }),
            publicKeyPem: pair.publicKey.export({ type: "spki", format: "pem" }),
        };
    }
    if (type === "random:index/randomPassword:RandomPassword") {
        return { ...inputs, result: "x".repeat(inputs.length) };
    }
    return inputs;
}

pulumi.runtime.setMocks(
    {
        newResource: ({ type, name, inputs }) => {
            registered += 1;
            if (type === "pulumi-nodejs:dynamic:Resource") {
                dynamicProviders.push(inputs.__provider);
            }
            lastRegistrationMs = performance.now();
            const cpu = process.cpuUsage();
            lastRegistrationCpuMs = (cpu.user + cpu.system) / 1000;
            return { id: `${name}-id`, state: outputsFor(type, inputs) };
        },
        call: ({ token }) => {
            throw new Error(`unexpected invoke ${token}`);
        },
    },
    process.env.BENCH_PROJECT,
    process.env.BENCH_STACK,
    false,
);
// The engine acknowledges the runtime's shutdown signal; the mock monitor has no such call.
pulumi.runtime.getMonitor().signalAndWaitForShutdown = (_request, callback) => callback(null, {});

process.on("exit", () => {
    // ts-node 10 registers its service here; the ts-node 7 that @pulumi/pulumi vendors does not.
    const tsNode = process[Symbol.for("ts-node.register.instance")];
    const compiler = tsNode
        ? { typescript: tsNode.ts.version, transpileOnly: tsNode.transpileOnly, swc: tsNode.options.swc === true }
        : null;
    writeSync(1, `${JSON.stringify({ registered, lastRegistrationMs, lastRegistrationCpuMs, compiler, dynamicProviders })}\n`);
});
