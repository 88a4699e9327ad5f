import * as pulumi from "@pulumi/pulumi";
import { buildStack } from "./stack";

const outputs = buildStack(pulumi.runtime.allConfig());

export const substituterUrl = outputs.substituterUrl;
export const publicKey = outputs.publicKey;
export const secretKey = outputs.secretKey;
export const bucketName = outputs.bucketName;
export const writerAccessKey = outputs.writerAccessKey;
export const writerSecretKey = outputs.writerSecretKey;
export const uploadUrl = outputs.uploadUrl;
export const nixSettings = outputs.nixSettings;
export const nixConf = outputs.nixConf;
export const nixosClient = outputs.nixosClient;
export const awsCredentials = outputs.awsCredentials;
export const builderNixConf = outputs.builderNixConf;
export const builderDrainEnv = outputs.builderDrainEnv;
