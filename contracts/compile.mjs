// Compiles a solc standard-JSON input (stdin) with the pinned solc-js and prints the
// standard-JSON output (stdout). Imports of "@openzeppelin/..." resolve in node_modules.
// Called by contracts/build.py; not meant to be run by hand.
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const require = createRequire(import.meta.url);
const root = process.argv[2];
const solc = require(path.join(root, "node_modules", "solc"));

function findImports(importPath) {
  if (!importPath.startsWith("@openzeppelin/contracts/") || importPath.includes("..")) {
    return { error: `import not allowed: ${importPath}` };
  }
  try {
    return { contents: readFileSync(path.join(root, "node_modules", importPath), "utf8") };
  } catch (err) {
    return { error: `cannot read ${importPath}: ${err.message}` };
  }
}

const input = readFileSync(0, "utf8");
if (process.argv[3] === "--version") {
  process.stdout.write(solc.version());
} else {
  process.stdout.write(solc.compile(input, { import: findImports }));
}
