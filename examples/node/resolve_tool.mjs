// Resolve an agent's code_interpreter tool and build `tools: [...]` for the OpenAI Responses API,
// from Node, loading the contract straight from protos/ (no generated code).
//
// Run the service first (`make run`) and install the gRPC libraries (`cd tools/node && npm ci`,
// or `make test`), then:
//
//   node examples/node/resolve_tool.mjs --agent analyst
//   node examples/node/resolve_tool.mjs --agent analyst --container <container uuid>
//
// The first resolves the auto tool (OpenAI picks the container); the second binds the agent to
// one of the tenant's RUNNING containers first, so the tool names that container. It prints the
// `tools` array as JSON, then the `client.responses.create(...)` call it belongs in (this example
// makes no OpenAI call). How the tool was resolved goes to stderr.
//
// In your own project: `npm install @grpc/grpc-js @grpc/proto-loader`, import them directly, and
// point PROTOS and GOOGLEAPIS at your copy of the contract and of google/api/*.proto.

import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const PROTOS = path.join(ROOT, "protos");
const GOOGLEAPIS = path.join(ROOT, "third_party", "googleapis");
// In this repository the libraries are dev dependencies of tools/node.
const require = createRequire(path.join(ROOT, "tools", "node", "package.json"));
const grpc = require("@grpc/grpc-js");
const protoLoader = require("@grpc/proto-loader");

const { values: args } = parseArgs({
  options: {
    address: { type: "string", default: "127.0.0.1:50051" },
    tenant: { type: "string", default: "acme" },
    user: { type: "string", default: "alice" },
    agent: { type: "string", default: "analyst" },
    container: { type: "string" }, // bind the agent to this container (a UUID) first
    model: { type: "string", default: "gpt-4.1" },
    input: { type: "string", default: "Use Python to compute the 30th Fibonacci number." },
  },
});

const definition = protoLoader.loadSync(
  ["binding_service.proto", "tool_service.proto"].map((name) =>
    path.join(PROTOS, "agentcontainers", "v1", name),
  ),
  { includeDirs: [PROTOS, GOOGLEAPIS], keepCase: true, enums: String, longs: String, defaults: true },
);
const v1 = grpc.loadPackageDefinition(definition).agentcontainers.v1;

// Every call names its tenant and user in metadata.
const metadata = new grpc.Metadata();
metadata.add("x-tenant-id", args.tenant);
metadata.add("x-user-id", args.user);

const bindings = new v1.AgentBindingService(args.address, grpc.credentials.createInsecure());
const tools = new v1.ToolResolutionService(args.address, grpc.credentials.createInsecure(), {
  channelOverride: bindings.getChannel(),
});

function call(client, method, request) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + 30_000);
    client[method](request, metadata, { deadline }, (error, response) =>
      error ? reject(error) : resolve(response),
    );
  });
}

try {
  if (args.container) {
    await call(bindings, "BindContainer", { agent_key: args.agent, container_id: args.container });
  }
  // Mode unspecified: the bound container when it is live, else auto.
  const resolved = await call(tools, "ResolveTool", {
    agent_key: args.agent,
    tool: "code_interpreter",
    config: {},
  });
  process.stderr.write(
    `${resolved.tool}: ${resolved.mode} from ${resolved.source} ${resolved.openai_container_id}\n`,
  );
  if (resolved.fallback_reason !== "FALLBACK_REASON_UNSPECIFIED") {
    process.stderr.write(`fell back to auto: ${resolved.fallback_reason}: ${resolved.fallback_detail}\n`);
  }

  // tool_json is the tool exactly as the Responses API takes it.
  const toolList = [JSON.parse(resolved.tool_json)];
  const request = { model: args.model, input: args.input, tools: toolList };
  process.stdout.write(`${JSON.stringify(toolList, null, 2)}\n\n`);
  process.stdout.write(
    "// With the OpenAI SDK (npm install openai; OPENAI_API_KEY set):\n" +
      "const client = new OpenAI();\n" +
      `const response = await client.responses.create(${JSON.stringify(request, null, 2)});\n` +
      "console.log(response.output_text);\n",
  );
} catch (error) {
  if (typeof error.code !== "number") throw error;
  process.stderr.write(`${grpc.status[error.code]} (${error.code}): ${error.details}\n`);
  process.exitCode = 1;
} finally {
  bindings.close(); // closes the channel both clients share
}
