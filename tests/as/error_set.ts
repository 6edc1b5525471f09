// error_set.ts - reports errors the two ways an AssemblyScript plugin can.
//   fail   : error_set("failed: <input>") and return 1
//   throws : throw new Error("thrown: <input>"); the abort handler (myAbort,
//            compiled in with --use abort=error_set/myAbort) calls
//            error_set("abort: <message> at <file>:<line>:<column>"), then
//            the module traps (unreachable)
//   ok     : outputs "fine" (the plugin keeps working after failures)
import { Host, Memory } from "@extism/as-pdk";
import { error_set } from "@extism/as-pdk/lib/env";

function myAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32
): void {
  const text = "abort: " + (message === null ? "" : message) + " at " +
    (fileName === null ? "?" : fileName) + ":" + lineNumber.toString() + ":" +
    columnNumber.toString();
  error_set(Memory.allocateString(text).offset);
}

export function fail(): i32 {
  error_set(Memory.allocateString("failed: " + Host.inputString()).offset);
  return 1;
}

export function throws(): i32 {
  throw new Error("thrown: " + Host.inputString());
}

export function ok(): i32 {
  Host.outputString("fine");
  return 0;
}
