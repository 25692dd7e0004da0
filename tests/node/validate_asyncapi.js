// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints every diagnostic;
// exits 1 on any error-severity one. On success prints what the parser understood as one JSON line:
// {"channels": {id: address}, "operations": {id: action}, "messages": [ids]}.
// Usage: node validate_asyncapi.js FILE (NODE_PATH naming the node_modules that hold the parser).
const fs = require("fs");
const path = require("path");
const { Parser, DiagnosticSeverity } = require("@asyncapi/parser");

async function main() {
  const file = path.resolve(process.argv[2]);
  const { document, diagnostics } = await new Parser().parse(fs.readFileSync(file, "utf8"), { source: file });
  let errors = 0;
  for (const diagnostic of diagnostics) {
    const severity = DiagnosticSeverity[diagnostic.severity];
    if (diagnostic.severity === DiagnosticSeverity.Error) errors += 1;
    console.error(`${severity} ${diagnostic.code} at ${diagnostic.path.join(".")}: ${diagnostic.message}`);
  }
  if (errors > 0 || document === undefined) {
    console.error(`${errors} error(s): the document is not valid AsyncAPI`);
    process.exit(1);
  }
  const summary = {
    channels: Object.fromEntries(document.channels().all().map((c) => [c.id(), c.address()])),
    operations: Object.fromEntries(document.operations().all().map((o) => [o.id(), o.action()])),
    messages: document.components().messages().all().map((m) => m.id()),
  };
  console.log(JSON.stringify(summary));
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
