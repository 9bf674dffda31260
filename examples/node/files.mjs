// Move files in and out of a container from Node, as an agent runtime does around a run, loading
// the contract straight from protos/ (no generated code).
//
// Run the service first (`make run`) and install the gRPC libraries (`cd tools/node && npm ci`),
// then:
//
//   node examples/node/files.mjs upload --container <container id> data.csv
//   node examples/node/files.mjs download --container cntr_... --file cfile_... --out out/
//
// `upload` streams a local file into the container (under /mnt/data/) and prints the
// ContainerFile as JSON; `download` saves a file a run cited (the `container_id` and `file_id` of
// a `container_file_citation`, as they are) and prints its path. Bytes stream both ways.

import { createReadStream, createWriteStream, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROTOS = path.join(ROOT, "protos");
const GOOGLEAPIS = path.join(ROOT, "third_party", "googleapis");
const require = createRequire(path.join(ROOT, "tools", "node", "package.json"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values: args, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    address: { type: "string", default: "127.0.0.1:50051" },
    tenant: { type: "string", default: "acme" },
    user: { type: "string", default: "alice" },
    container: { type: "string" },
    file: { type: "string" },
    out: { type: "string", default: "." },
  },
});
const [command, localPath] = positionals;

const definition = protoLoader.loadSync(
  [path.join(PROTOS, "agentcontainers", "v1", "container_service.proto")],
  { includeDirs: [PROTOS, GOOGLEAPIS], keepCase: true, enums: String, longs: String, defaults: true },
);
const v1 = grpc.loadPackageDefinition(definition).agentcontainers.v1;
// The download's first message carries the file's ContainerFile as an Any: decode it with
// protobufjs (which @grpc/proto-loader is built on), from the same protos.
const protobuf = require("protobufjs");
const root = new protobuf.Root();
root.resolvePath = (origin, target) =>
  [PROTOS, GOOGLEAPIS].map((dir) => path.join(dir, target)).find((file) => existsSync(file)) ??
  target;
root.loadSync("agentcontainers/v1/container.proto", { keepCase: true });
const ContainerFile = root.lookupType("agentcontainers.v1.ContainerFile");

const metadata = new grpc.Metadata();
metadata.add("x-tenant-id", args.tenant);
metadata.add("x-user-id", args.user);
const client = new v1.ContainerService(args.address, grpc.credentials.createInsecure());

async function upload() {
  const answer = new Promise((resolve, reject) => {
    const call = client.UploadContainerFile(metadata, (error, file) =>
      error ? reject(error) : resolve(file),
    );
    (async () => {
      // The first message names the container and the file; the others carry the content.
      call.write({ container_id: args.container, filename: path.basename(localPath) });
      for await (const piece of createReadStream(localPath, { highWaterMark: 256 * 1024 })) {
        if (!call.write({ content: { data: piece } })) await once(call, "drain");
      }
      call.end();
    })().catch(reject);
  });
  process.stdout.write(`${JSON.stringify(await answer, null, 2)}\n`);
}

async function download() {
  mkdirSync(args.out, { recursive: true });
  const call = client.DownloadContainerFile(
    { container_id: args.container, file_id: args.file },
    metadata,
  );
  let sink = null;
  let target = null;
  for await (const message of call) {
    if (sink === null) {
      // The first message describes the file; the others are its bytes.
      const described = ContainerFile.decode(message.extensions[0].value);
      target = path.join(args.out, path.basename(described.path));
      sink = createWriteStream(target);
      continue;
    }
    if (!sink.write(message.data)) await once(sink, "drain");
  }
  sink.end();
  await once(sink, "finish");
  process.stdout.write(`${target}\n`);
}

try {
  if (command === "upload") await upload();
  else if (command === "download") await download();
  else throw new Error("usage: files.mjs upload|download ...");
} catch (error) {
  if (typeof error.code !== "number") throw error;
  process.stderr.write(`${grpc.status[error.code]} (${error.code}): ${error.details}\n`);
  process.exitCode = 1;
} finally {
  client.close();
}
