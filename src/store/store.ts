import { join } from "node:path";
import { openDatabase, type Db } from "./db.js";
import { AccessEventRepo } from "./repos/access-events.js";
import { CertificateRepo } from "./repos/certificates.js";
import { EnrollTokenRepo } from "./repos/enroll-tokens.js";
import { NamespaceRepo } from "./repos/namespaces.js";
import { PolicyVersionRepo } from "./repos/policy-versions.js";

export const DB_FILE = "portcullis.db";

/** The store of one data directory: the database and its repositories. */
export class Store {
  readonly certificates: CertificateRepo;
  readonly enrollTokens: EnrollTokenRepo;
  readonly accessEvents: AccessEventRepo;
  readonly namespaces: NamespaceRepo;
  readonly policyVersions: PolicyVersionRepo;
  private closed = false;

  constructor(readonly db: Db) {
    this.certificates = new CertificateRepo(db);
    this.enrollTokens = new EnrollTokenRepo(db);
    this.accessEvents = new AccessEventRepo(db);
    this.namespaces = new NamespaceRepo(db);
    this.policyVersions = new PolicyVersionRepo(db);
  }

  static open(dataDir: string): Store {
    return new Store(openDatabase(join(dataDir, DB_FILE)));
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }

  get isOpen(): boolean {
    return !this.closed && this.db.open;
  }
}
