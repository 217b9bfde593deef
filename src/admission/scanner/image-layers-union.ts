/**
 * The union of an image's layers, as its container sees it (overlay semantics; see
 * image-layers.ts), built from the per-layer indexes once the manifest has given their
 * order, and the file view answered from it.
 *
 * Only what a scan needs is kept: a tree of every path (directories, links, and files,
 * non-wanted files sharing one content-less node), and the contents of wanted files.
 */
import { pcError } from "../../core/index.js";
import type { ImageFile, ImageFileView, ImageLayer } from "./image-layers.js";

export const K_DIR = 0;
export const K_FILE = 1;
export const K_SYMLINK = 2;
export const K_HARDLINK = 3;
export const K_OTHER = 4;
export const K_WHITEOUT = 5;
export const K_OPAQUE = 6;

/** One layer's entries in archive order: relative paths, kinds, and content or link targets. */
export interface LayerIndex {
  paths: string[];
  kinds: number[];
  extra: Map<number, Buffer | string>;
}

interface DirNode {
  readonly k: typeof K_DIR;
  readonly children: Map<string, Node>;
}
interface FileNode {
  readonly k: typeof K_FILE;
  readonly layer: number;
  /** Present for wanted files; a wanted hard link to a file that was not read has none. */
  readonly content: Buffer | undefined;
}
interface LinkNode {
  readonly k: typeof K_SYMLINK;
  readonly layer: number;
  readonly target: string;
}
interface OtherNode {
  readonly k: typeof K_OTHER;
}
type Node = DirNode | FileNode | LinkNode | OtherNode;

interface Content {
  readonly content: Buffer;
  readonly layer: number;
}

const PLAIN: FileNode = Object.freeze({ k: K_FILE, layer: -1, content: undefined });
const OTHER: OtherNode = Object.freeze({ k: K_OTHER });
const MAX_LINK_HOPS = 40;

const newDir = (): DirNode => ({ k: K_DIR, children: new Map() });

function unsafe(detail: string) {
  return pcError("PC_SCAN_ARCHIVE_UNSAFE", detail);
}

/** Applies the layers bottom-up and collects the wanted files that remain visible. */
export class Union {
  private readonly root = newDir();
  readonly files = new Map<string, Content>();

  constructor(layers: readonly LayerIndex[], private readonly wanted: (path: string) => boolean) {
    const candidates = new Set<string>();
    const lastUse = new Map<LayerIndex, number>();
    layers.forEach((layer, li) => lastUse.set(layer, li));
    layers.forEach((layer, li) => {
      this.apply(layer, li, candidates);
      if (lastUse.get(layer) === li) {
        // The index is applied for the last time (a repeated layer is applied again); its memory can go.
        layer.paths = [];
        layer.kinds = [];
        layer.extra.clear();
      }
    });
    const links: string[] = [];
    for (const path of candidates) {
      const node = this.literal(path);
      if (node === undefined) continue;
      if (node.k === K_FILE) {
        if (node.content !== undefined) this.files.set(`/${path}`, { content: node.content, layer: node.layer });
        else throw unsafe(`/${path} is a hard link to a file the scan does not read`);
      } else if (node.k === K_OTHER) {
        throw unsafe(`/${path} is not a regular file`);
      } else if (node.k === K_SYMLINK) {
        links.push(path);
      }
    }
    for (const path of links) {
      const found = this.resolveContent(`/${path}`, true);
      if (found !== undefined) this.files.set(`/${path}`, found);
    }
  }

  private apply(layer: LayerIndex, li: number, candidates: Set<string>): void {
    const { paths, kinds, extra } = layer;
    // What this layer hides applies to the layers below it only.
    for (let i = 0; i < paths.length; i++) {
      const kind = kinds[i];
      if (kind === K_WHITEOUT) {
        const path = paths[i] as string;
        const slash = path.lastIndexOf("/");
        const parent = this.literal(slash < 0 ? "" : path.slice(0, slash));
        if (parent?.k === K_DIR) parent.children.delete(path.slice(slash + 1));
      } else if (kind === K_OPAQUE) {
        const dir = this.literal(paths[i] as string);
        if (dir?.k === K_DIR) dir.children.clear();
      }
    }
    for (let i = 0; i < paths.length; i++) {
      const path = paths[i] as string;
      switch (kinds[i]) {
        case K_DIR:
          this.place(path, newDir());
          break;
        case K_FILE: {
          const content = extra.get(i) as Buffer | undefined;
          if (content === undefined) this.place(path, PLAIN);
          else {
            this.place(path, { k: K_FILE, layer: li, content });
            candidates.add(path);
          }
          break;
        }
        case K_SYMLINK:
          this.place(path, { k: K_SYMLINK, layer: li, target: extra.get(i) as string });
          if (this.wanted(`/${path}`)) candidates.add(path);
          break;
        case K_HARDLINK:
          this.place(path, this.hardLink(path, extra.get(i) as string, li, candidates));
          break;
        case K_OTHER:
          this.place(path, OTHER);
          if (this.wanted(`/${path}`)) candidates.add(path);
          break;
      }
    }
  }

  private hardLink(path: string, target: string, li: number, candidates: Set<string>): Node {
    const to = this.literal(target);
    if (to?.k === K_FILE && to.content !== undefined) {
      candidates.add(path);
      return { k: K_FILE, layer: li, content: to.content };
    }
    if (to?.k === K_SYMLINK) {
      if (this.wanted(`/${path}`)) candidates.add(path);
      return { k: K_SYMLINK, layer: li, target: to.target };
    }
    if (to?.k === K_OTHER) {
      if (this.wanted(`/${path}`)) candidates.add(path);
      return OTHER;
    }
    if (this.wanted(`/${path}`)) {
      candidates.add(path);
      return { k: K_FILE, layer: li, content: undefined };
    }
    return PLAIN;
  }

  /** Puts a node at a path; a directory merges with a directory, anything else replaces. */
  private place(path: string, node: Node): void {
    const parts = path.split("/");
    let dir = this.root;
    for (let i = 0; i < parts.length - 1; i++) {
      const name = parts[i] as string;
      let child = dir.children.get(name);
      if (child === undefined || child.k !== K_DIR) {
        child = newDir();
        dir.children.set(name, child);
      }
      dir = child;
    }
    const name = parts[parts.length - 1] as string;
    if (node.k === K_DIR && dir.children.get(name)?.k === K_DIR) return;
    dir.children.set(name, node);
  }

  /** The node at a relative path, links not followed ("" is the root). */
  private literal(path: string): Node | undefined {
    if (path === "") return this.root;
    let node: Node = this.root;
    for (const name of path.split("/")) {
      if (node.k !== K_DIR) return undefined;
      const next: Node | undefined = node.children.get(name);
      if (next === undefined) return undefined;
      node = next;
    }
    return node;
  }

  /**
   * Follows an absolute path through the image's links as the container would, never
   * above the image root: such a link, and a loop, are refused.
   */
  private resolve(path: string): { node: Node; path: string } | undefined {
    const meaningful = (p: string) => p !== "" && p !== ".";
    const pending = path.split("/").filter(meaningful).reverse();
    const names: string[] = [];
    const dirs: DirNode[] = [this.root];
    let hops = 0;
    while (pending.length > 0) {
      const name = pending.pop() as string;
      if (name === "..") {
        if (names.length === 0) throw unsafe(`a link on the way to ${JSON.stringify(path)} leads outside the image`);
        names.pop();
        dirs.pop();
        continue;
      }
      const child = (dirs[dirs.length - 1] as DirNode).children.get(name);
      if (child === undefined) return undefined;
      if (child.k === K_SYMLINK) {
        if (++hops > MAX_LINK_HOPS) throw unsafe(`the links on the way to ${JSON.stringify(path)} loop`);
        if (child.target === "") return undefined;
        if (child.target.startsWith("/")) {
          names.length = 0;
          dirs.length = 1;
        }
        for (const part of child.target.split("/").filter(meaningful).reverse()) pending.push(part);
        continue;
      }
      if (pending.length > 0) {
        if (child.k !== K_DIR) return undefined;
        names.push(name);
        dirs.push(child);
      } else {
        return { node: child, path: `/${[...names, name].join("/")}` };
      }
    }
    return { node: dirs[dirs.length - 1] as DirNode, path: `/${names.join("/")}` };
  }

  /**
   * The content a path leads to. A wanted path that leads to a file whose content was not
   * read (or to a device) is refused: the container would read something the scan did not.
   */
  resolveContent(path: string, wanted: boolean): Content | undefined {
    const found = this.resolve(path);
    if (found === undefined) return undefined;
    const { node } = found;
    if (node.k === K_FILE) {
      if (node.content !== undefined) return { content: node.content, layer: node.layer };
      if (wanted) throw unsafe(`${path} leads to ${found.path}, which the scan does not read`);
      return undefined;
    }
    if (node.k === K_OTHER && wanted) throw unsafe(`${path} leads to ${found.path}, which is not a regular file`);
    return undefined;
  }
}

export class FileView implements ImageFileView {
  constructor(
    readonly os: string | undefined,
    readonly architecture: string | undefined,
    readonly layers: readonly ImageLayer[],
    private readonly union: Union,
    private readonly wanted: (path: string) => boolean,
  ) {}

  read(path: string): Buffer | undefined {
    return this.lookup(path)?.content;
  }

  file(path: string): ImageFile | undefined {
    const found = this.lookup(path);
    if (found === undefined) return undefined;
    const layer = this.layers[found.layer];
    if (layer === undefined) return undefined;
    return { path: absolute(path), size: found.content.length, layer };
  }

  list(prefixOrGlob: string): string[] {
    const pattern = absolute(prefixOrGlob);
    let match: (p: string) => boolean;
    if (/[*?]/.test(pattern)) {
      const re = globToRegExp(pattern);
      match = (p) => re.test(p);
    } else if (pattern.endsWith("/")) {
      match = (p) => p.startsWith(pattern);
    } else {
      match = (p) => p === pattern || p.startsWith(`${pattern}/`);
    }
    return [...this.union.files.keys()].filter(match).sort();
  }

  private lookup(path: string): Content | undefined {
    const p = absolute(path);
    const direct = this.union.files.get(p);
    if (direct !== undefined) return direct;
    // Not a wanted file by its own path: follow links in its directories, inside the image.
    return this.union.resolveContent(p, this.wanted(p));
  }
}

/** "/a//b" and "a/b" both become "/a/b"; a trailing "/" is kept (a directory prefix). */
function absolute(path: string): string {
  const trailing = path.length > 1 && path.endsWith("/");
  const parts = path.split("/").filter((s) => s !== "" && s !== ".");
  return `/${parts.join("/")}${trailing && parts.length > 0 ? "/" : ""}`;
}

/** `**` any number of path segments (`**\/` also none), `*` and `?` within one segment. */
export function globToRegExp(glob: string): RegExp {
  let out = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === "*" && glob[i + 1] === "*") {
      const slashAfter = glob[i + 2] === "/";
      out += slashAfter ? "(?:.*/)?" : ".*";
      i += slashAfter ? 2 : 1;
    } else if (c === "*") out += "[^/]*";
    else if (c === "?") out += "[^/]";
    else out += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${out}$`);
}
