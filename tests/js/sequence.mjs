// Runs a three-step activity sequence with the JavaScript Durable Task SDK against a scheduler.
// Usage: node sequence.mjs <host:port> [taskhub]
// The orchestrator is an async generator, as the 0.4.0 executor requires.
// Prints "INSTANCE <id>" and "RESULT <output JSON>" and exits 0 on success; non-zero on failure or after the time limit.
import durabletask from "@microsoft/durabletask-js";
import grpc from "@grpc/grpc-js";

const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus } = durabletask;

const hostAddress = process.argv[2] ?? process.env.SCHEDULER_ADDRESS;
const taskHub = process.argv[3] ?? process.env.TASK_HUB;
const limitMs = Number(process.env.SEQUENCE_TIMEOUT_MS ?? 60000);

if (!hostAddress) {
  console.error("usage: node sequence.mjs <host:port> [taskhub]");
  process.exit(2);
}

const timer = setTimeout(() => {
  console.error(`sequence did not finish within ${limitMs} ms`);
  process.exit(3);
}, limitMs);

// SDK logs go to stderr so stdout carries only the result.
const logger = {
  error: (message, ...args) => console.error(message, ...args),
  warn: (message, ...args) => console.error(message, ...args),
  info: () => {},
  debug: () => {},
};

const metadataGenerator = async () => {
  const metadata = new grpc.Metadata();
  if (taskHub) metadata.add("taskhub", taskHub);
  return metadata;
};

const worker = new TaskHubGrpcWorker({ hostAddress, metadataGenerator, logger, shutdownTimeoutMs: 2000 });
worker.addNamedActivity("greet", (_ctx, city) => `Hello, ${city}!`);
worker.addNamedOrchestrator("sequence", async function* (ctx, cities) {
  const greetings = [];
  for (const city of cities) {
    greetings.push(yield ctx.callActivity("greet", city));
  }
  return greetings;
});

const client = new TaskHubGrpcClient({ hostAddress, metadataGenerator, logger });

let exitCode = 1;
try {
  await worker.start();
  const id = await client.scheduleNewOrchestration("sequence", ["Tokyo", "Seattle", "London"]);
  const state = await client.waitForOrchestrationCompletion(id, true, Math.floor(limitMs / 1000));
  if (!state) {
    console.error(`instance ${id} was not found`);
  } else if (state.runtimeStatus !== OrchestrationStatus.COMPLETED) {
    console.error(`instance ${id} ended ${OrchestrationStatus[state.runtimeStatus]}: ${JSON.stringify(state.failureDetails ?? null)}`);
  } else {
    console.log(`INSTANCE ${id}`);
    console.log(`RESULT ${state.serializedOutput}`);
    exitCode = 0;
  }
} catch (error) {
  console.error("sequence failed:", error);
}

clearTimeout(timer);
await Promise.race([Promise.allSettled([worker.stop(), client.stop()]), new Promise((resolve) => setTimeout(resolve, 3000))]);
process.exit(exitCode);
