// Runs durable entities with the JavaScript Durable Task SDK against a scheduler:
// client signals, an orchestration that calls an entity, and a critical section over two entities.
// Usage: node entities.mjs <host:port> [taskhub]
// Prints "RESULT <json>" and exits 0 on success; non-zero on failure or after the time limit.
import durabletask from "@microsoft/durabletask-js";
import grpc from "@grpc/grpc-js";

const { TaskHubGrpcClient, TaskHubGrpcWorker, OrchestrationStatus, TaskEntity, EntityInstanceId } = durabletask;

const hostAddress = process.argv[2] ?? process.env.SCHEDULER_ADDRESS;
const taskHub = process.argv[3] ?? process.env.TASK_HUB;
const limitMs = Number(process.env.ENTITIES_TIMEOUT_MS ?? 60000);
if (!hostAddress) {
  console.error("usage: node entities.mjs <host:port> [taskhub]");
  process.exit(2);
}

const timer = setTimeout(() => {
  console.error(`entities did not finish within ${limitMs} ms`);
  process.exit(3);
}, limitMs);

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

class Counter extends TaskEntity {
  initializeState() { return 0; }
  add(amount) { this.state += amount; }
  get() { return this.state; }
}

const a = new EntityInstanceId("counter", "a");
const b = new EntityInstanceId("counter", "b");

const worker = new TaskHubGrpcWorker({ hostAddress, metadataGenerator, logger, shutdownTimeoutMs: 2000 });
worker.addNamedEntity("counter", () => new Counter());
worker.addNamedOrchestrator("callCounter", async function* (ctx) {
  yield ctx.entities.callEntity(a, "add", 5);
  return yield ctx.entities.callEntity(a, "get");
});
worker.addNamedOrchestrator("bothLocked", async function* (ctx) {
  const lock = yield ctx.entities.lockEntities(a, b);
  const va = yield ctx.entities.callEntity(a, "get");
  yield ctx.entities.callEntity(b, "add", va);
  lock.release();
  return yield ctx.entities.callEntity(b, "get");
});

const client = new TaskHubGrpcClient({ hostAddress, metadataGenerator, logger });

async function run(name) {
  const id = await client.scheduleNewOrchestration(name);
  const state = await client.waitForOrchestrationCompletion(id, true, Math.floor(limitMs / 1000));
  if (!state || state.runtimeStatus !== OrchestrationStatus.COMPLETED) {
    throw new Error(`${name} ended ${state ? OrchestrationStatus[state.runtimeStatus] : "missing"}: ${JSON.stringify(state?.failureDetails ?? null)}`);
  }
  return JSON.parse(state.serializedOutput);
}

let exitCode = 1;
try {
  await worker.start();
  for (let i = 0; i < 10; i++) await client.signalEntity(a, "add", 1);
  const called = await run("callCounter");
  const locked = await run("bothLocked");
  const entity = await client.getEntity(b, true);
  console.log(`RESULT ${JSON.stringify({ called, locked, b: entity?.state ?? null, lockedBy: entity?.lockedBy ?? null })}`);
  exitCode = 0;
} catch (error) {
  console.error("entities failed:", error);
}

clearTimeout(timer);
await Promise.race([Promise.allSettled([worker.stop(), client.stop()]), new Promise((resolve) => setTimeout(resolve, 3000))]);
process.exit(exitCode);
