import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "./stack";

// The module's exports are the stack's outputs.
export = buildStack(pulumi.runtime.allConfig());
