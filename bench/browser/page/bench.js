// Times the page's wasm client (greeter-web's GreeterApi, built by bench/wasm) and connect-web's
// gRPC-Web client against the same server from the same page. Calls alternate in rounds, so that
// both clients see the same warm-up, the same server and the same browser state.

import init, { WasmGreeter } from "./greeter_bench_wasm.js";
import { connectGreeter } from "./connect-web.js";

await init();
const origin = window.location.origin;
const wasm = new WasmGreeter(origin);
const connect = connectGreeter(origin);

const clients = {
  wasm: {
    sayHello: (name) => wasm.sayHello(name),
    countStream: (name, count) => wasm.countStream(name, count),
  },
  connect: {
    sayHello: async (name) => (await connect.sayHello({ name })).message,
    countStream: async (name, count) => {
      let received = 0;
      for await (const _ of connect.sayHelloStream({ name, count, intervalMs: 0 })) {
        received++;
      }
      return received;
    },
  },
};

/** Milliseconds per unary call and greetings per second for each client. */
window.runBench = async ({ rounds, callsPerRound, streamCount }) => {
  const unaryMs = { wasm: 0, connect: 0 };
  const streamMs = { wasm: 0, connect: 0 };
  for (const client of Object.values(clients)) {
    // One of each first, outside the timing: connections open, code paths warm.
    if ((await client.sayHello("warm")) !== "Hello, warm") throw new Error("bad greeting");
    if ((await client.countStream("warm", 10)) !== 10) throw new Error("bad stream");
  }
  for (let round = 0; round < rounds; round++) {
    for (const [name, client] of Object.entries(clients)) {
      const started = performance.now();
      for (let call = 0; call < callsPerRound; call++) {
        const greeting = await client.sayHello("Bench");
        if (greeting !== "Hello, Bench") throw new Error(`${name}: ${greeting}`);
      }
      unaryMs[name] += performance.now() - started;
      const streamStarted = performance.now();
      const received = await client.countStream("Bench", streamCount);
      if (received !== streamCount) throw new Error(`${name}: ${received} greetings`);
      streamMs[name] += performance.now() - streamStarted;
    }
  }
  const calls = rounds * callsPerRound;
  const result = {};
  for (const name of Object.keys(clients)) {
    result[name] = {
      unaryMs: unaryMs[name] / calls,
      streamPerSecond: (rounds * streamCount) / (streamMs[name] / 1000),
    };
  }
  return result;
};
document.querySelector("#status").textContent = "ready";
