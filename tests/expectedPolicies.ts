// The policy documents for the default bucket, written out by hand (not rendered by lib/), so the
// pure-function tests and the mock-engine tests check against the same independent bytes.

export const WRITER_POLICY_FOR_NIX_CACHE =
    '{"Version":"2012-10-17","Statement":[' +
    '{"Sid":"WriterBucket","Effect":"Allow",' +
    '"Action":["s3:GetBucketLocation","s3:ListBucket","s3:ListBucketMultipartUploads"],' +
    '"Resource":["arn:aws:s3:::nix-cache"]},' +
    '{"Sid":"WriterObjects","Effect":"Allow",' +
    '"Action":["s3:GetObject","s3:PutObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],' +
    '"Resource":["arn:aws:s3:::nix-cache/*"]},' +
    '{"Sid":"WriterKeepsCacheInfo","Effect":"Deny",' +
    '"Action":["s3:PutObject"],' +
    '"Resource":["arn:aws:s3:::nix-cache/nix-cache-info"]}]}';

export const ANONYMOUS_DOWNLOAD_POLICY_FOR_NIX_CACHE =
    '{"Version":"2012-10-17","Statement":[' +
    '{"Sid":"AnonymousDownload","Effect":"Allow","Principal":{"AWS":["*"]},' +
    '"Action":["s3:GetObject"],"Resource":["arn:aws:s3:::nix-cache/*"]}]}';

export const COLLECTOR_POLICY_FOR_NIX_CACHE =
    '{"Version":"2012-10-17","Statement":[' +
    '{"Sid":"CollectorBucket","Effect":"Allow",' +
    '"Action":["s3:GetBucketLocation","s3:ListBucket"],' +
    '"Resource":["arn:aws:s3:::nix-cache"]},' +
    '{"Sid":"CollectorObjects","Effect":"Allow",' +
    '"Action":["s3:GetObject","s3:DeleteObject"],' +
    '"Resource":["arn:aws:s3:::nix-cache/*"]},' +
    '{"Sid":"CollectorKeepsCacheInfoAndPins","Effect":"Deny",' +
    '"Action":["s3:DeleteObject"],' +
    '"Resource":["arn:aws:s3:::nix-cache/nix-cache-info","arn:aws:s3:::nix-cache/pins/*"]}]}';
