/**
 * Run by vulndb-crash.test.ts as its own process: imports a zip into the store of a
 * directory in small batches, printing "begun" once started. The test kills it with
 * SIGKILL part-way.
 */
import { importVulnDb } from "../../../src/admission/scanner/vulndb-import.js";
import { Store } from "../../../src/store/index.js";

const [dataDir, zip] = process.argv.slice(2) as [string, string];
const store = Store.open(dataDir);
process.stdout.write("begun\n");
const r = await importVulnDb(store, zip, { id: "user:importer" }, { batchSize: 25 });
store.close();
process.stdout.write(`done ${r.version}\n`);
