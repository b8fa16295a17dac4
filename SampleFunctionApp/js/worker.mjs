// A Durable Task worker in JavaScript: the hello-cities chain, registered as "HelloCitiesJs" so that it runs
// beside the .NET sample app on the same scheduler and task hub without either taking the other's work.
//
//   SCHEDULER_ADDRESS=localhost:8080 node worker.mjs
//
// Start an instance through the .NET sample's HTTP API (POST /api/orchestrators/HelloCitiesJs) or any client.
import * as grpc from "@grpc/grpc-js";
import { TaskHubGrpcWorker } from "@microsoft/durabletask-js";

export const cities = ["Tokyo", "Seattle", "London", "Cairo", "Lima"];

/**
 * Function chaining: one activity per city, each awaited (yielded) before the next. Orchestrators must be async
 * generator functions (async function*): the SDK treats anything else as a plain return value.
 */
export async function* helloCitiesJs(context) {
  const greetings = [];
  for (const city of cities) {
    greetings.push(yield context.callActivity("SayHelloJs", city));
  }
  return greetings;
}

export function sayHelloJs(_context, name) {
  return `Hello, ${name}!`;
}

/**
 * The scheduler's gRPC address as host:port (the SDK takes no scheme). The first of: SCHEDULER_ADDRESS,
 * services__scheduler__grpc__0 (set by the Aspire AppHost's WithReference(scheduler)), Scheduler__Address,
 * else localhost:8080.
 */
export function schedulerAddress(env = process.env) {
  const value = env.SCHEDULER_ADDRESS || env.services__scheduler__grpc__0 || env.Scheduler__Address || "localhost:8080";
  return value.trim().replace(/^[a-z]+:\/\//i, "").replace(/\/+$/, "");
}

/** The task hub, sent as the "taskhub" header on every call: SCHEDULER_TASKHUB, Scheduler__TaskHub, else "default". */
export function taskHub(env = process.env) {
  return env.SCHEDULER_TASKHUB || env.Scheduler__TaskHub || "default";
}

/** An API key for a scheduler with authentication on (sent as "authorization: Bearer"): SCHEDULER_API_KEY or Scheduler__ApiKey. */
export function apiKey(env = process.env) {
  return env.SCHEDULER_API_KEY || env.Scheduler__ApiKey || undefined;
}

export function createWorker({ address = schedulerAddress(), hub = taskHub(), key = apiKey() } = {}) {
  const worker = new TaskHubGrpcWorker({
    hostAddress: address,
    metadataGenerator: async () => {
      const metadata = new grpc.Metadata();
      metadata.set("taskhub", hub);
      if (key) metadata.set("authorization", `Bearer ${key}`);
      return metadata;
    },
    // Tell the scheduler which orchestrations and activities this worker runs (generated from the registrations).
    workItemFilters: "auto",
  });
  worker.addNamedOrchestrator("HelloCitiesJs", helloCitiesJs);
  worker.addNamedActivity("SayHelloJs", sayHelloJs);
  return worker;
}

// Run only when started as a program, not when imported.
if (import.meta.url === `file://${process.argv[1]}`) {
  const address = schedulerAddress();
  const hub = taskHub();
  const worker = createWorker({ address, hub });
  await worker.start();
  console.log(`HelloCitiesJs worker started: scheduler ${address}, task hub '${hub}'. Ctrl+C to stop.`);

  // With HEALTH_PORT set (the AppHost sets it), GET /health answers 200 while the worker runs, for health checks.
  if (process.env.HEALTH_PORT) {
    const { createServer } = await import("node:http");
    createServer((req, res) => {
      res.writeHead(req.url === "/health" ? 200 : 404, { "content-type": "text/plain" });
      res.end(req.url === "/health" ? "Healthy" : "Not found");
    }).listen(Number(process.env.HEALTH_PORT), "127.0.0.1");
  }

  const shutdown = async (signal) => {
    console.log(`${signal}: stopping the worker.`);
    try {
      await worker.stop();
    } finally {
      process.exit(0);
    }
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));
}
