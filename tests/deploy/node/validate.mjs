// Validates prometheus-operator objects (a JSON array on stdin) against the operator's published
// schemas, as bundled by @kubernetes-models/prometheus-operator, and refuses fields the operator does
// not define. The bundled schemas check types and patterns but, like the CRDs' structural schemas,
// let unknown fields through (the API server would prune a misspelt `for` silently): the package's
// own TypeScript types, checked by the TypeScript compiler, name every unknown field. Prints one line
// per problem and exits 1 when there is any; exits 2 for a kind it has no schema for.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import path from "node:path";
import ts from "typescript";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = { PrometheusRule, ServiceMonitor };
const objects = JSON.parse(readFileSync(0, "utf8"));
let problems = 0;
const report = (line) => {
  problems += 1;
  console.log(line);
};

for (const object of objects) {
  const Model = models[object.kind];
  if (!Model || object.apiVersion !== Model.apiVersion) {
    console.log(`${object.apiVersion} ${object.kind}: no schema here`);
    process.exit(2);
  }
  try {
    new Model(object).validate();
  } catch (error) {
    report(`${object.kind} ${object.metadata?.name}: ${error.message}`);
  }
}

// Each object becomes a typed constant; excess-property checks name what the types do not define.
const here = path.dirname(fileURLToPath(import.meta.url));
const checked = path.join(here, "rendered-objects.ts");
const source = [
  ...Object.keys(models).map(
    (kind) =>
      `import type { I${kind} } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${kind}";`,
  ),
  ...objects.map((object, index) => `export const object${index}: I${object.kind} = ${JSON.stringify(object)};`),
].join("\n");
const options = {
  strict: true,
  noEmit: true,
  skipLibCheck: true,
  target: ts.ScriptTarget.ES2022,
  module: ts.ModuleKind.NodeNext,
  moduleResolution: ts.ModuleResolutionKind.NodeNext,
};
const host = ts.createCompilerHost(options);
const readFile = host.readFile.bind(host);
const fileExists = host.fileExists.bind(host);
const getSourceFile = host.getSourceFile.bind(host);
host.readFile = (name) => (name === checked ? source : readFile(name));
host.fileExists = (name) => name === checked || fileExists(name);
host.getSourceFile = (name, version, ...rest) =>
  name === checked ? ts.createSourceFile(name, source, version) : getSourceFile(name, version, ...rest);
const program = ts.createProgram([checked], options, host);
for (const diagnostic of ts.getPreEmitDiagnostics(program)) {
  const message = ts.flattenDiagnosticMessageText(diagnostic.messageText, " ");
  if (diagnostic.file?.fileName !== checked) {
    report(`the operator's types: ${message}`);
    continue;
  }
  const { line } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start ?? 0);
  const object = objects[line - Object.keys(models).length];
  report(`${object?.kind} ${object?.metadata?.name}: ${message}`);
}
process.exit(problems ? 1 : 0);
