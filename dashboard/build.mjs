// Copies the charting library from node_modules into vendor/ (committed, so the gateway serves the
// dashboard without npm). Run after `npm ci` when chart.js's pinned version changes.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const chart = join(here, "node_modules", "chart.js");
const vendor = join(here, "vendor");
mkdirSync(vendor, { recursive: true });
copyFileSync(join(chart, "dist", "chart.umd.min.js"), join(vendor, "chart.umd.min.js"));
copyFileSync(join(chart, "LICENSE.md"), join(vendor, "chart.js-LICENSE.md"));
const { version } = JSON.parse(readFileSync(join(chart, "package.json"), "utf8"));
console.log(`vendor/chart.umd.min.js: chart.js ${version}`);
