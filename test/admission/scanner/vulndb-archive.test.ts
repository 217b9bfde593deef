/**
 * Hostile inputs to the vulnerability database import: zips with entries that climb out
 * (`../`), absolute names, backslashes, symbolic links, zip bombs (by ratio, by size, by
 * lying about their size), too many or too large entries, corrupt data; directories with
 * links out and special files. Each is refused with its code and a detail naming the
 * entry; the database in force stays, no import rows are left, nothing is written to disk.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { unsafeEntryName } from "../../../src/admission/scanner/vulndb-archive.js";
import { importVulnDb, type VulnDbImportOptions } from "../../../src/admission/scanner/vulndb-import.js";
import { VulnDb } from "../../../src/admission/scanner/vulndb.js";
import { isPortcullisError } from "../../../src/core/index.js";
import { Store } from "../../../src/store/index.js";
import { entriesOf, fixtureRecords, writeZip, type ZipEntrySpec } from "./vulndb-support.js";

const root = mkdtempSync(join(tmpdir(), "portcullis-vulndb-evil-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const ACTOR = { id: "user:secadmin" };
const ALL = fixtureRecords();
const GOOD = entriesOf(ALL);
const DSA = ALL.get("DSA-5532-1") as string;
const MiB = 1024 * 1024;
let n = 0;

let dataDir: string;
let store: Store;
let db: VulnDb;
beforeEach(async () => {
  dataDir = mkdtempSync(join(root, "data-"));
  store = Store.open(dataDir);
  db = new VulnDb(store);
  const good = join(root, `${++n}-good.zip`);
  writeFileSync(good, writeZip(GOOD));
  await importVulnDb(store, good, ACTOR);
});
afterEach(() => store.close());

/** Every file and directory under `dir`, relative. */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).sort();
}

async function expectRefused(input: string, code: string, detail: string | RegExp, opts: VulnDbImportOptions = {}): Promise<void> {
  const before = db.status();
  const files = tree(root);
  let err: unknown;
  try {
    await importVulnDb(store, input, ACTOR, opts);
  } catch (e) {
    err = e;
  }
  expect(isPortcullisError(err), String(err)).toBe(true);
  if (!isPortcullisError(err)) return;
  expect(err.code).toBe(code);
  if (typeof detail === "string") expect(err.detail).toBe(detail);
  else expect(err.detail).toMatch(detail);
  // Nothing changed: the same database answers, the refused import left no rows, and
  // nothing was written next to the input or anywhere under the test's directory.
  expect(db.status()).toEqual(before);
  expect(db.match("npm", "lodash", "4.17.20").map((f) => f.id)).toEqual(["GHSA-35jh-r3h4-6jhm"]);
  expect(db.imports().map((i) => [i.state, i.purgedAt !== null])).toEqual([
    ["active", false],
    ["failed", true],
  ]);
  const left = store.db.prepare("SELECT count(*) AS n FROM vuln_records WHERE import_id <> ?").get(before?.version) as { n: number };
  expect(left.n).toBe(0);
  expect(tree(root).filter((f) => !f.startsWith(dataDir.slice(root.length + 1)))).toEqual(files.filter((f) => !f.startsWith(dataDir.slice(root.length + 1))));
}

function zipOf(name: string, entries: readonly ZipEntrySpec[]): string {
  const path = join(root, `${++n}-${name}`);
  writeFileSync(path, writeZip(entries));
  return path;
}

/** A good record first and last, the hostile entry between them. */
const around = (evil: ZipEntrySpec): ZipEntrySpec[] => [GOOD[0] as ZipEntrySpec, evil, GOOD[1] as ZipEntrySpec];

describe("zip entries that are not safe to read: PC_SCAN_ARCHIVE_UNSAFE naming the entry", () => {
  it.each([
    ["../evil.json", `"../evil.json"`, "a '..' segment"],
    ["osv/../../evil.json", `"osv/../../evil.json"`, "a '..' segment"],
    ["/abs.json", `"/abs.json"`, "an absolute path"],
    ["C:/abs.json", `"C:/abs.json"`, "an absolute path"],
    ["dir\\evil.json", `"dir\\\\evil.json"`, "a backslash in its name"],
    ["..\\evil.json", `"..\\\\evil.json"`, "a backslash in its name"],
    ["evil\u0000.json", `"evil\\u0000.json"`, "a control character in its name"],
  ])("name %j", async (name, shown, why) => {
    const zip = zipOf("evil.zip", around({ name, data: DSA }));
    await expectRefused(zip, "PC_SCAN_ARCHIVE_UNSAFE", `${shown} (in ${zip}): ${why}`);
  });

  it("a symbolic link entry", async () => {
    const zip = zipOf("link.zip", around({ name: "link.json", data: "/etc/passwd", mode: 0o120777, method: 0 }));
    await expectRefused(zip, "PC_SCAN_ARCHIVE_UNSAFE", `"link.json" (in ${zip}): a symbolic link`);
  });

  it("a device or fifo entry", async () => {
    const zip = zipOf("fifo.zip", around({ name: "fifo.json", data: "", mode: 0o010644, method: 0 }));
    await expectRefused(zip, "PC_SCAN_ARCHIVE_UNSAFE", `"fifo.json" (in ${zip}): neither a file nor a directory`);
  });

  it("a zip bomb: an entry that inflates more than 100 times", async () => {
    const zip = zipOf("bomb.zip", around({ name: "bomb.json", data: Buffer.alloc(3 * MiB, 0x20) }));
    await expectRefused(zip, "PC_SCAN_ARCHIVE_UNSAFE", new RegExp(`^"bomb.json" \\(in ${zip}\\): compression ratio \\d+:1, above 100:1$`));
  });

  it("a zip bomb that lies about its size: refused once it inflates past what it declares", async () => {
    const zip = zipOf("liar.zip", around({ name: "liar.json", data: Buffer.alloc(64 * MiB, 0x20), declaredSize: 1000 }));
    await expectRefused(zip, "PC_SCAN_ARCHIVE_UNSAFE", `"liar.json" (in ${zip}): inflates to more than its declared 1000 bytes`);
  });

  it("entries whose data overlap (one compressed stream claimed by many entries)", async () => {
    // Every entry's central record points at the same local header and data.
    const one = writeZip([{ name: "a.json", data: DSA }]);
    const cdStart = one.readUInt32LE(one.length - 6);
    const cd = one.subarray(cdStart, one.length - 22);
    const copies = 200;
    const eocd = Buffer.from(one.subarray(one.length - 22));
    eocd.writeUInt16LE(copies, 8);
    eocd.writeUInt16LE(copies, 10);
    eocd.writeUInt32LE(cd.length * copies, 12);
    const path = join(root, `${++n}-overlap.zip`);
    writeFileSync(path, Buffer.concat([one.subarray(0, cdStart), ...Array.from({ length: copies }, () => cd), eocd]));
    await expectRefused(path, "PC_SCAN_ARCHIVE_UNSAFE", /^"a.json" \(in .*\): its data overlaps other entries'$/);
  });
});

describe("size and count limits: PC_SCAN_FILE_TOO_LARGE", () => {
  it("an entry above 4 MiB", async () => {
    const big = randomBytes(5 * MiB).toString("base64"); // barely compressible
    const zip = zipOf("big.zip", around({ name: "big.json", data: big }));
    await expectRefused(zip, "PC_SCAN_FILE_TOO_LARGE", `"big.json" (in ${zip}): ${Buffer.byteLength(big)} bytes, more than the ${4 * MiB} read per file`);
  });

  it("more entries than the limit, refused before any is read", async () => {
    const zip = zipOf("many.zip", GOOD);
    await expectRefused(zip, "PC_SCAN_FILE_TOO_LARGE", `${zip}: 6 entries, more than the 5 files read per import`, { limits: { maxEntries: 5 } });
  });

  it("more bytes together than the limit", async () => {
    const zip = zipOf("total.zip", GOOD);
    await expectRefused(zip, "PC_SCAN_FILE_TOO_LARGE", /^".*\.json" \(in .*\): the files of this import exceed 6000 bytes together$/, { limits: { maxTotalBytes: 6000 } });
  });
});

describe("entries that are not OSV records: PC_SCAN_VULNDB_INVALID", () => {
  it("a file that is not *.json", async () => {
    const zip = zipOf("readme.zip", around({ name: "README.txt", data: "OSV export" }));
    await expectRefused(zip, "PC_SCAN_VULNDB_INVALID", `"README.txt" (in ${zip}): not an OSV record (*.json)`);
  });

  it("a *.json entry that is not JSON", async () => {
    const zip = zipOf("notjson.zip", around({ name: "X-1.json", data: "<html>not json</html>" }));
    await expectRefused(zip, "PC_SCAN_VULNDB_INVALID", new RegExp(`^"X-1.json" \\(in ${zip}\\): \\$: not valid JSON`));
  });

  it("a malformed record", async () => {
    const bad = JSON.stringify({ id: "X-2", modified: "yesterday", affected: [] });
    const zip = zipOf("malformed.zip", around({ name: "X-2.json", data: bad }));
    await expectRefused(zip, "PC_SCAN_VULNDB_INVALID", `"X-2.json" (in ${zip}): $.modified: must be an RFC 3339 timestamp, not "yesterday"`);
  });

  it("a wrong CRC-32", async () => {
    const zip = zipOf("crc.zip", around({ name: "X-3.json", data: DSA, crc: 12345 }));
    await expectRefused(zip, "PC_SCAN_VULNDB_INVALID", `"X-3.json" (in ${zip}): CRC-32 mismatch`);
  });

  it("text that is not UTF-8", async () => {
    const zip = zipOf("latin1.zip", around({ name: "X-4.json", data: Buffer.from([0x7b, 0xff, 0x7d]) }));
    await expectRefused(zip, "PC_SCAN_VULNDB_INVALID", `"X-4.json" (in ${zip}): not UTF-8 text`);
  });

  it("a file that is not a zip", async () => {
    const path = join(root, `${++n}-random.zip`);
    writeFileSync(path, randomBytes(4096));
    await expectRefused(path, "PC_SCAN_VULNDB_INVALID", new RegExp(`^${path}: not a readable zip archive \\(`));
  });

  it("a truncated zip", async () => {
    const whole = writeZip(GOOD);
    const path = join(root, `${++n}-truncated.zip`);
    writeFileSync(path, whole.subarray(0, whole.length - 40));
    await expectRefused(path, "PC_SCAN_VULNDB_INVALID", new RegExp(`^${path}: not a readable zip archive \\(`));
  });
});

describe("directories", () => {
  function dirWith(setup: (dir: string) => void): string {
    const dir = join(root, `${++n}-dir`);
    mkdirSync(join(dir, "npm"), { recursive: true });
    writeFileSync(join(dir, "DSA-5532-1.json"), DSA);
    setup(dir);
    return dir;
  }

  it("a symbolic link to a file outside", async () => {
    const outside = join(root, `${++n}-outside.json`);
    writeFileSync(outside, DSA);
    const dir = dirWith((d) => symlinkSync(outside, join(d, "npm", "X-5.json")));
    await expectRefused(dir, "PC_SCAN_ARCHIVE_UNSAFE", `"npm/X-5.json" (in ${dir}): a symbolic link that leads out of the directory`);
  });

  it("a symbolic link to a directory outside", async () => {
    const outside = mkdtempSync(join(root, "outside-"));
    writeFileSync(join(outside, "X-6.json"), DSA);
    const dir = dirWith((d) => symlinkSync(outside, join(d, "more")));
    await expectRefused(dir, "PC_SCAN_ARCHIVE_UNSAFE", `"more" (in ${dir}): a symbolic link that leads out of the directory`);
  });

  it("a fifo named *.json (never opened for reading)", async () => {
    const dir = dirWith((d) => execFileSync("mkfifo", [join(d, "npm", "fifo.json")]));
    await expectRefused(dir, "PC_SCAN_ARCHIVE_UNSAFE", `"npm/fifo.json" (in ${dir}): not a regular file`);
  });

  it("a file above 4 MiB", async () => {
    const dir = dirWith((d) => writeFileSync(join(d, "npm", "big.json"), Buffer.alloc(4 * MiB + 1, 0x20)));
    await expectRefused(dir, "PC_SCAN_FILE_TOO_LARGE", `"npm/big.json" (in ${dir}): ${4 * MiB + 1} bytes, more than the ${4 * MiB} read per file`);
  });

  it("links that stay inside are skipped (their targets are read where they are); other files and hidden folders are ignored", async () => {
    const dir = dirWith((d) => {
      writeFileSync(join(d, "npm", "GHSA-35jh-r3h4-6jhm.json"), ALL.get("GHSA-35jh-r3h4-6jhm") as string);
      symlinkSync(join(d, "npm"), join(d, "npm-again"));
      symlinkSync(join(d, "DSA-5532-1.json"), join(d, "npm", "copy.json"));
      writeFileSync(join(d, "README.md"), "# OSV");
      mkdirSync(join(d, ".git"));
      writeFileSync(join(d, ".git", "junk.json"), "not json");
    });
    const r = await importVulnDb(store, dir, ACTOR);
    expect(r).toMatchObject({ records: 2, duplicates: 0, ecosystems: { Debian: 1, npm: 1 } });
  });
});

describe("unsafeEntryName", () => {
  it.each([
    ["DSA-5532-1.json", undefined],
    ["npm/GHSA-35jh-r3h4-6jhm.json", undefined],
    ["a..b.json", undefined],
    ["", "an empty name"],
    ["..", "a '..' segment"],
    ["a/../b.json", "a '..' segment"],
    ["/etc/passwd", "an absolute path"],
    ["c:x.json", "an absolute path"],
    ["a\\b.json", "a backslash in its name"],
    ["a\nb.json", "a control character in its name"],
  ])("%j → %s", (name, why) => {
    expect(unsafeEntryName(name)).toBe(why);
  });
});
