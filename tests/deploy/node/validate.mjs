// Validates prometheus-operator objects (a JSON array on stdin) against the operator's published
// schemas, as bundled by @kubernetes-models/prometheus-operator. Prints one line per problem and
// exits 1 when there is any; exits 2 for a kind it has no schema for.
import { readFileSync } from "node:fs";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const models = { PrometheusRule, ServiceMonitor };
let problems = 0;
for (const object of JSON.parse(readFileSync(0, "utf8"))) {
  const Model = models[object.kind];
  if (!Model || object.apiVersion !== Model.apiVersion) {
    console.log(`${object.apiVersion} ${object.kind}: no schema here`);
    process.exit(2);
  }
  try {
    new Model(object).validate();
  } catch (error) {
    problems += 1;
    console.log(`${object.kind} ${object.metadata?.name}: ${error.message}`);
  }
}
process.exit(problems ? 1 : 0);
