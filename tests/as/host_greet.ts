// host_greet.ts - calls a host function with a string and outputs its string.
// Imports "extism:host/user" "greet" : (i64) -> i64 (block in, block out).
//   greet_host : output = the block greet(<input as a new block>) returns
//                (empty when it returns 0)
//   count_calls: var "calls" (decimal text) += 1, output the new value:
//                "1", "2", ... on one plugin instance
import { Host, Memory, Var } from "@extism/as-pdk";
import { length } from "@extism/as-pdk/lib/env";

@external("extism:host/user", "greet")
declare function greet(name: u64): u64;

function myAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32
): void {}

export function greet_host(): i32 {
  const name = Memory.allocateBytes(Host.input());
  const answer = greet(name.offset);
  Host.outputMemory(new Memory(answer, answer == 0 ? 0 : length(answer)));
  return 0;
}

export function count_calls(): i32 {
  const previous = Var.getString("calls");
  const n = (previous === null ? 0 : I32.parseInt(previous)) + 1;
  Var.set("calls", Uint8Array.wrap(String.UTF8.encode(n.toString())));
  Host.outputString(n.toString());
  return 0;
}
