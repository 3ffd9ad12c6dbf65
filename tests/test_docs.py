"""The README and docs/ hold together: links resolve, every page is reachable, paths are real.

The README is the front door and docs/ holds a page per task (docs/index.md lists them). These
tests read the Markdown as GitHub renders it: links outside code, relative to the file; an
``#anchor`` into a Markdown file must name one of its headings under GitHub's slug rules
(lowercase, spaces to ``-``, punctuation other than ``-`` and ``_`` dropped, ``-1``, ``-2`` for
repeats). Code paths and module names the pages cite must exist in the tree as it is now, and the
quick start keeps the two commands ``.ci/run`` runs.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CHECKED = [README, ROOT / "CHANGELOG.md", *PAGES]
README_MAX_LINES = 300

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.M)
CODE_SPAN = re.compile(r"`+[^`]*?`+", re.S)
# A path into the tree, where it starts a word (``../shared/bench/x`` is outside the repository).
CODE_PATH = re.compile(r"(?<![\w./-])((?:server|storage|tools|tests|bench)/[\w./-]*)")
# MCP method names that look like paths.
NOT_PATHS = {"tools/list", "tools/call"}
MODULE_NAME = re.compile(r"(?<![\w.])memorch(?:\.[A-Za-z_]\w*)+")
PACKAGE_ROOTS = {"memorch": ROOT / "server", "memorch.tools": ROOT / "tools", "memorch.storage": ROOT / "storage"}


def outside_fences(text: str) -> str:
    """The text with fenced code blocks blanked out (line count kept)."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            fenced = not fenced
            lines.append("")
            continue
        lines.append("" if fenced else line)
    return "\n".join(lines)


def prose(text: str) -> str:
    """What GitHub renders as Markdown: no fenced blocks, no inline code spans."""
    return CODE_SPAN.sub("", outside_fences(text))


def slug(heading: str) -> str:
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link shows its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in outside_fences(path.read_text(encoding="utf-8")).split("\n"):
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(text: str) -> list[str]:
    rendered = prose(text)
    return INLINE_LINK.findall(rendered) + REFERENCE_DEFINITION.findall(rendered)


def is_external(target: str) -> bool:
    return "://" in target or target.startswith(("mailto:", "tel:"))


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """(file or directory, anchor) of a relative link written in ``source``."""
    path, _, anchor = target.partition("#")
    resolved = (source.parent / unquote(path)).resolve() if path else source
    return resolved, unquote(anchor)


def section(text: str, title: str) -> str:
    """The body of the ``## title`` section, up to the next heading of level 1 or 2."""
    lines = outside_fences(text).split("\n")
    raw = text.split("\n")
    start = next((i for i, line in enumerate(lines) if re.match(rf"^##\s+{re.escape(title)}\s*$", line)), None)
    assert start is not None, f"no '## {title}' section"
    end = next((i for i in range(start + 1, len(lines)) if re.match(r"^#{1,2}\s", lines[i])), len(lines))
    return "\n".join(raw[start + 1 : end])


def linked_pages(source: Path, text: str) -> set[Path]:
    return {resolve(source, t)[0] for t in links(text) if not is_external(t) and not t.startswith("#")}


def test_docs_exist() -> None:
    assert (DOCS / "index.md").is_file(), "docs/index.md lists the pages"
    assert len(PAGES) > 1, "docs/ holds the pages the README links to"


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = []
    for target in links(page.read_text(encoding="utf-8")):
        if is_external(target):
            continue
        resolved, anchor = resolve(page, target)
        if not resolved.exists():
            broken.append(f"{target}: no such file")
        elif ROOT not in resolved.parents and resolved != ROOT:
            broken.append(f"{target}: outside the repository")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target}: no heading '#{anchor}' in {resolved.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)


def test_every_page_is_in_the_index() -> None:
    index = DOCS / "index.md"
    listed = linked_pages(index, index.read_text(encoding="utf-8"))
    missing = [p.name for p in PAGES if p != index and p.resolve() not in listed]
    assert not missing, f"docs/index.md does not link: {missing}"


def test_every_page_is_in_the_readme_documentation_section() -> None:
    listed = linked_pages(README, section(README.read_text(encoding="utf-8"), "Documentation"))
    missing = [p.name for p in PAGES if p.resolve() not in listed]
    assert not missing, f"README's Documentation section does not link: {missing}"


def test_readme_stays_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines < README_MAX_LINES, f"README.md has {lines} lines; the detail belongs in docs/"


def test_quick_start_keeps_the_commands_ci_runs() -> None:
    """.ci/run runs exactly the README's two quick-start commands, from one code block."""
    body = section(README.read_text(encoding="utf-8"), "Quick start")
    block = re.search(r"```bash\n(.*?)```", body, re.S)
    assert block, "the quick start has a bash code block"
    commands = [line.split("#", 1)[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands == ["uv run memorch serve", "uv run --extra dev pytest"]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    for command in commands:
        assert re.search(rf"^{re.escape(command)}\b", ci, re.M), f".ci/run does not run `{command}`"


@pytest.mark.parametrize("page", CHECKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_paths_exist(page: Path) -> None:
    """``server/...``, ``storage/...``, ``tests/...``: each file or folder a page names is there."""
    missing = set()
    for match in CODE_PATH.finditer(page.read_text(encoding="utf-8")):
        path = match.group(1).rstrip(".")
        if path not in NOT_PATHS and not (ROOT / path).exists():
            missing.add(path)
    assert not missing, f"{page.relative_to(ROOT)} cites paths that do not exist: {sorted(missing)}"


def module_exists(name: str) -> bool:
    """Whether a dotted ``memorch...`` name is real as far as modules go: each lowercase part
    right under ``memorch`` and each private (``_x``) part must be a module or a package; the
    first part that is neither is taken as an attribute (``memorch.Memory``, ``...build_server``)."""
    parts = name.split(".")
    for root_name in sorted(PACKAGE_ROOTS, key=len, reverse=True):
        if name == root_name or name.startswith(root_name + "."):
            folder, rest = PACKAGE_ROOTS[root_name], name[len(root_name) :].lstrip(".").split(".")
            break
    if parts[1] == "db":  # memorch.db is the ledger's file name
        return True
    for depth, part in enumerate(p for p in rest if p):
        if (folder / part / "__init__.py").is_file():
            folder = folder / part
            continue
        if (folder / f"{part}.py").is_file():
            return True
        must_be_module = part.startswith("_") or (depth == 0 and folder == PACKAGE_ROOTS["memorch"] and part.islower())
        return not must_be_module
    return True


@pytest.mark.parametrize("page", [README, *PAGES], ids=lambda p: str(p.relative_to(ROOT)))
def test_cited_modules_exist(page: Path) -> None:
    """The CHANGELOG is left out: it names the old modules on purpose."""
    names = {m.group(0).rstrip(".") for m in MODULE_NAME.finditer(page.read_text(encoding="utf-8"))}
    missing = sorted(n for n in names if not module_exists(n))
    assert not missing, f"{page.relative_to(ROOT)} names modules that do not exist: {missing}"


def architecture_layers() -> tuple[tuple[str, ...], ...]:
    """``LAYERS`` of tests/test_architecture.py, read without importing it."""
    tree = ast.parse((ROOT / "tests" / "test_architecture.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        if isinstance(target, ast.Name) and target.id == "LAYERS" and node.value is not None:
            return ast.literal_eval(node.value)
    raise AssertionError("tests/test_architecture.py has no LAYERS")


def module_map() -> dict[str, int]:
    """Package name -> layer number, from the table of docs/internals.md's "Module map"."""
    layers: dict[str, int] = {}
    for line in section((DOCS / "internals.md").read_text(encoding="utf-8"), "Module map").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 2 and cells[0].isdigit():
            for name in re.findall(r"`(memorch[\w.]*)`", cells[1]):
                layers[name] = int(cells[0])
    return layers


def test_module_map_names_every_sub_package() -> None:
    table = module_map()
    packages = {f"memorch.{p.parent.name}" for p in (ROOT / "server").glob("*/__init__.py")}
    expected = packages | {"memorch.tools", "memorch.storage", "memorch.errors", "memorch.results", "memorch.config"}
    missing = sorted(expected - set(table))
    assert not missing, f"docs/internals.md's module map leaves out: {missing}"


def test_module_map_follows_the_layer_order() -> None:
    """The table's layers are tests/test_architecture.py's, in the same order."""
    table = module_map()
    order = {name: i for i, group in enumerate(architecture_layers()) for name in group}
    missing = sorted(n for n in order if n not in table and n != "memorch.__main__")
    assert not missing, f"the module map leaves out layers' packages: {missing}"
    unknown = sorted(n for n in table if n not in order)
    assert not unknown, f"the module map names packages no layer has: {unknown}"
    names = sorted(table, key=lambda n: order[n])
    for lower, higher in itertools.pairwise(names):
        same = order[lower] == order[higher]
        assert (table[lower] == table[higher]) if same else (table[lower] < table[higher]), (
            f"module map: {lower} (layer {table[lower]}) and {higher} (layer {table[higher]}) "
            "disagree with tests/test_architecture.py's LAYERS"
        )
