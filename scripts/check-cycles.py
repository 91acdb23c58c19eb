#!/usr/bin/env python3
"""Lists, for each .rs file under src/core and under src/binding, the other
files of the same tree it imports, and fails when two files import each
other, directly or through others (the binding imports the core, never the
other way: the core has no napi types at all). An import is a `use` or a path in code (`crate::core::x::...`,
`super::x`, `self::x`, or a child module's name in a `use`), resolved to the
file that defines the deepest module it names; `pub use` re-exports count.
A parent declaring its children (`mod x;`) does not.

Usage: python3 scripts/check-cycles.py [--verbose]
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "src"
TREES = [ROOT / "core", ROOT / "binding"]


def module_of(path):
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "mod":
    parts.pop()
  return tuple(parts)


def file_of(module):
  base = ROOT.joinpath(*module)
  for candidate in (base.with_suffix(".rs"), base / "mod.rs"):
    if candidate.exists():
      return candidate
  return None


def resolve(module, segments):
  """The file of the deepest module named by `segments` from `module`."""
  for segment in segments:
    if segment == "*" or file_of(module + (segment,)) is None:
      break
    module = module + (segment,)
  return file_of(module)


def expand(tree):
  """`a::{b, c::{d, e}}` -> [[a, b], [a, c, d], [a, c, e]]."""
  tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
  depth, start, items = 0, 0, []
  brace = tree.find("{")
  if brace < 0:
    return [[s for s in tree.split("::") if s]]
  prefix = [s for s in tree[:brace].split("::") if s]
  inner = tree[brace + 1 : tree.rfind("}")]
  for i, ch in enumerate(inner + ","):
    if ch == "{":
      depth += 1
    elif ch == "}":
      depth -= 1
    elif ch == "," and depth == 0:
      part = inner[start:i]
      start = i + 1
      if part:
        items += [prefix + rest for rest in expand(part)]
  return items


def anchor(module, segments):
  """Where a path starts: (module, rest) or None when it leaves src/core."""
  head = segments[0]
  if head == "crate":
    return ((), segments[1:])
  if head == "super":
    while segments and segments[0] == "super":
      module, segments = module[:-1], segments[1:]
    return (module, segments)
  if head == "self":
    return (module, segments[1:])
  if file_of(module + (head,)):
    return (module, segments)
  return None


def imports(path, within):
  text = path.read_text()
  text = re.sub(r"//[^\n]*", "", text)
  module = module_of(path)
  # An inline `mod tests { ... }` sits one level below its file.
  split = re.search(r"^mod tests \{", text, re.M)
  parts = [(text, module)]
  if split:
    parts = [(text[: split.start()], module), (text[split.start() :], module + ("tests",))]
  found = set()
  for code, at in parts:
    paths = []
    for tree in re.findall(r"\buse\s+([^;]+);", code):
      paths += expand(tree)
    code = re.sub(r"\buse\s+[^;]+;", "", code)
    paths += [p.split("::") for p in re.findall(r"(?<![:\w])\w+(?:::\w+)+", code)]
    for segments in paths:
      start = anchor(at, segments)
      if start is None:
        continue
      target = resolve(*start)
      if target is not None and target != path and within in target.parents:
        found.add(target)
  return found


def check(tree, verbose):
  files = sorted(tree.rglob("*.rs"))
  graph = {f: imports(f, tree) for f in files}
  name = lambda f: str(f.relative_to(tree))
  if verbose:
    for f in files:
      print(f"{name(f)}: {', '.join(sorted(map(name, graph[f]))) or '-'}")
  # Layers: a file sits one above the highest file it imports.
  level, visiting = {}, []

  def depth(f):
    if f in visiting:
      cycle = visiting[visiting.index(f) :] + [f]
      sys.exit(f"\ncycle in {tree.relative_to(ROOT.parent)}: " + " -> ".join(map(name, cycle)))
    if f not in level:
      visiting.append(f)
      level[f] = 1 + max((depth(g) for g in graph[f]), default=-1)
      visiting.pop()
    return level[f]

  for f in files:
    depth(f)
  print(f"{tree.relative_to(ROOT.parent)}: no cycles; from the bottom up:")
  for n in range(max(level.values()) + 1):
    print(f"  {n}: {'  '.join(name(f) for f in files if level[f] == n)}")


def main():
  verbose = "--verbose" in sys.argv
  for tree in TREES:
    check(tree, verbose)


main()
