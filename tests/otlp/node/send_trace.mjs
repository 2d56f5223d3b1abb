// A Node.js service's trace, sent to Watchkeeper by OpenTelemetry JS's own OTLP/HTTP exporter
// (OTLP JSON, ids in hex): a chat request and the LLM call it made.
// Usage: node send_trace.mjs <traces url> <ingest key>
// Prints {"traceId", "rootSpanId", "callSpanId"} as JSON; exits 1 when the export fails.
import { SpanKind, context, trace } from "@opentelemetry/api";
import { ExportResultCode } from "@opentelemetry/core";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { defaultResource, resourceFromAttributes } from "@opentelemetry/resources";
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from "@opentelemetry/sdk-trace-base";

const [url, key] = process.argv.slice(2);
const memory = new InMemorySpanExporter();
const provider = new BasicTracerProvider({
  // The SDK's own resource says who sent it (telemetry.sdk.language "nodejs").
  resource: defaultResource().merge(resourceFromAttributes({ "service.name": "chat-gateway" })),
  spanProcessors: [new SimpleSpanProcessor(memory)],
});
const tracer = provider.getTracer("chat-gateway.routes");

const root = tracer.startSpan("POST /chat", {
  kind: SpanKind.SERVER,
  attributes: {
    "http.request.method": "POST",
    "http.route": "/chat",
    "http.response.status_code": 200,
    "enduser.id": "node-user",
  },
});
const call = tracer.startSpan(
  "chat gpt-4o-mini",
  {
    kind: SpanKind.CLIENT,
    attributes: {
      "gen_ai.system": "openai",
      "gen_ai.operation.name": "chat",
      "gen_ai.request.model": "gpt-4o-mini",
      "gen_ai.usage.input_tokens": 1000,
      "gen_ai.usage.output_tokens": 500,
      "server.address": "api.openai.com",
    },
  },
  trace.setSpan(context.active(), root),
);
call.end();
root.end();
await provider.forceFlush();

// The exporter is called directly, so its result decides the exit status.
const exporter = new OTLPTraceExporter({
  url,
  headers: { Authorization: `Bearer ${key}` },
  timeoutMillis: 30000,
});
const result = await new Promise((resolve) => exporter.export(memory.getFinishedSpans(), resolve));
await exporter.shutdown();
await provider.shutdown();
if (result.code !== ExportResultCode.SUCCESS) {
  console.error(`export failed: ${result.error}`);
  process.exit(1);
}
console.log(
  JSON.stringify({
    traceId: root.spanContext().traceId,
    rootSpanId: root.spanContext().spanId,
    callSpanId: call.spanContext().spanId,
  }),
);
