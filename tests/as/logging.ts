// logging.ts - logs the input at every level the PDK offers.
//   log_all : logs "<level>: <input>" at debug, info, warn and error, in
//             that order; outputs "logged"
import { Host, LogLevel } from "@extism/as-pdk";

function myAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32
): void {}

export function log_all(): i32 {
  const text = Host.inputString();
  Host.log(LogLevel.Debug, "debug: " + text);
  Host.log(LogLevel.Info, "info: " + text);
  Host.log(LogLevel.Warn, "warn: " + text);
  Host.log(LogLevel.Error, "error: " + text);
  Host.outputString("logged");
  return 0;
}
