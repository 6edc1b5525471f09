// build.mjs - compiles AssemblyScript test plugins (used by tests/conftest.py).
//
//   node build.mjs OUT_DIR NAME...
//
// For each NAME this runs the AssemblyScript compiler with exactly the arguments of
//
//   npx asc NAME.ts --outFile OUT_DIR/NAME.wasm --use abort=NAME/myAbort -O
//
// from this directory (each plugin defines its own abort handler, myAbort), and
// produces the same bytes. All plugins are compiled in this one node process:
// `npx asc` starts node twice per plugin (bin/asc.js re-executes itself with
// --enable-source-maps) and warms the compiler's JIT up each time, which makes
// a build of every plugin about three times slower.
//
// Exits 1 when a compilation fails, after printing the compiler's diagnostics
// and the failing command.
import { main } from "assemblyscript/asc";
import { join } from "node:path";

const [outDir, ...names] = process.argv.slice(2);
if (!outDir || names.length === 0) {
  console.error("usage: node build.mjs OUT_DIR NAME...");
  process.exit(2);
}

let failed = false;
for (const name of names) {
  const args = [`${name}.ts`, "--outFile", join(outDir, `${name}.wasm`),
                "--use", `abort=${name}/myAbort`, "-O"];
  const { error } = await main(args, { stdout: process.stdout, stderr: process.stderr });
  if (error) {
    console.error(`FAILED: npx asc ${args.join(" ")}\n${error}`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
