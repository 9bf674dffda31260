// Binds an agent to a container and resolves its code_interpreter tool, from Node.
//
// Used by tests/integration/test_node_client.py: it proves a non-Python client can drive the
// contract straight from protos/ (no generated code). Prints one JSON object
// {"binding": AgentBinding, "resolved": ResolvedTool} to stdout; on a gRPC error it prints the
// status code and details to stderr and exits 1.
//
//   node tests/integration/node/bind_and_resolve.mjs --address 127.0.0.1:50051 \
//     --tenant acme --agent analyst --container <uuid> [--user alice] [--no-identity]

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
// The gRPC libraries are dev dependencies of tools/node (installed by `make test`).
const require = createRequire(path.join(ROOT, "tools", "node", "package.json"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values: args } = parseArgs({
  options: {
    address: { type: "string" },
    tenant: { type: "string" },
    user: { type: "string", default: "alice" },
    agent: { type: "string" },
    container: { type: "string" },
    "no-identity": { type: "boolean", default: false },
    "timeout-seconds": { type: "string", default: "30" },
  },
});
for (const name of ["address", "tenant", "agent", "container"]) {
  if (!args[name]) {
    process.stderr.write(`missing --${name}\n`);
    process.exit(2);
  }
}

const definition = protoLoader.loadSync(
  [
    path.join(ROOT, "protos", "agentcontainers", "v1", "binding_service.proto"),
    path.join(ROOT, "protos", "agentcontainers", "v1", "tool_service.proto"),
  ],
  {
    includeDirs: [path.join(ROOT, "protos"), path.join(ROOT, "third_party", "googleapis")],
    keepCase: true,
    enums: String,
    longs: String,
    defaults: true,
  },
);
const v1 = grpc.loadPackageDefinition(definition).agentcontainers.v1;
const credentials = grpc.credentials.createInsecure();
const bindings = new v1.AgentBindingService(args.address, credentials);
// Both clients share the one channel (one connection).
const tools = new v1.ToolResolutionService(args.address, credentials, {
  channelOverride: bindings.getChannel(),
});

const metadata = new grpc.Metadata();
if (!args["no-identity"]) {
  metadata.add("x-tenant-id", args.tenant);
  metadata.add("x-user-id", args.user);
}

function call(client, method, request) {
  const deadline = new Date(Date.now() + Number(args["timeout-seconds"]) * 1000);
  return new Promise((resolve, reject) => {
    client[method](request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

try {
  const binding = await call(bindings, "BindContainer", {
    agent_key: args.agent,
    container_id: args.container,
  });
  const resolved = await call(tools, "ResolveTool", {
    agent_key: args.agent,
    tool: "code_interpreter",
    config: {},
  });
  process.stdout.write(`${JSON.stringify({ binding, resolved })}\n`);
} catch (error) {
  if (typeof error.code !== "number") throw error;
  process.stderr.write(`${grpc.status[error.code]} (${error.code}): ${error.details}\n`);
  process.exitCode = 1;
} finally {
  bindings.close(); // closes the shared channel
}
