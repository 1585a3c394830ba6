"""The registry's story, end to end, on a throw-away copy of this repository.

Run it with `scripts/demo` (which sets up .venv first). Each step prints what it does and the
commands it runs, as a publisher or reviewer would type them. Nothing outside a temporary folder is
touched: the copy is a fresh clone with its own local `staging` and `public` remotes (set in its
`.dvc/config.local`) and no git remote, so a "merge" can never reach the real repository.

The story is the list `STEPS`; a later part of the registry adds its steps to that list.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NEW_MODEL = "digits-mlp"
BRANCH = f"add-{NEW_MODEL}"


@dataclass
class Demo:
    """The state the steps share: where the throw-away registry lives and what was made so far."""

    work: Path
    clone: Path = field(init=False)
    storage: Path = field(init=False)
    files: dict[str, Path] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clone = self.work / "registry"
        self.storage = self.work / "storage"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every command: this repo's tools first, a demo git identity."""
        return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
                "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "Registry Demo",
                "GIT_AUTHOR_EMAIL": "demo@registry.invalid", "GIT_COMMITTER_NAME": "Registry Demo",
                "GIT_COMMITTER_EMAIL": "demo@registry.invalid", "PYTHONWARNINGS": "ignore"}

    def sh(self, *cmd: str | Path, expect: int | None = 0, quiet: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
        """Print and run a command in the clone; fail the demo if its exit code is not `expect`."""
        words = [str(c) for c in cmd]
        shown = " ".join(shlex.quote(self._short(w)) for w in words)
        print(f"  $ {shown}", flush=True)
        proc = subprocess.run(words, cwd=cwd or self.clone, env=self.env, capture_output=True, text=True)
        output = (proc.stdout + proc.stderr).rstrip()
        if output and not quiet:
            print(textwrap.indent(self._short(output), "    "), flush=True)
        if expect is not None and proc.returncode != expect:
            if quiet:
                print(textwrap.indent(output, "    "))
            raise SystemExit(f"demo failed: `{shown}` exited {proc.returncode}, expected {expect}")
        if expect is not None and expect != 0:
            print(f"    (exit code {proc.returncode}, as expected)")
        return proc

    def say(self, text: str) -> None:
        print(textwrap.indent(textwrap.fill(text, 96), "  "), flush=True)

    def _short(self, text: str) -> str:
        """Paths inside the temporary folder, shown relative to it."""
        text = text.replace(sys.executable, "python").replace(str(self.clone) + "/", "")
        return text.replace(str(self.work), "$DEMO")


@dataclass
class Step:
    """One named step of the story."""

    title: str
    run: Callable[[Demo], None]


# --------------------------------------------------------------------------- the steps

def copy_registry(d: Demo) -> None:
    d.say("A fresh clone of this repository, with its own local remotes, so nothing real is touched.")
    d.sh("git", "clone", "-q", "--no-hardlinks", REPO, d.clone, cwd=d.work)
    d.sh("git", "checkout", "-q", "-B", "main")
    d.sh("git", "remote", "remove", "origin")
    for remote in ("staging", "public"):
        d.sh("dvc", "remote", "modify", "--local", remote, "url", d.storage / remote)
    d.sh("registry", "check", "--all", "--offline", "--no-content")


def make_example_weights(d: Demo) -> None:
    d.say("The example models are trained from data that ships with scikit-learn. The run is "
          "deterministic, so it reproduces exactly the files the committed .dvc pointers name:")
    d.sh(sys.executable, "scripts/make-examples")
    d.sh("git", "status", "--short", "models/")
    d.say("(no changes: the pointers in git already name these exact files)")


def push_examples_to_staging(d: Demo) -> None:
    d.sh("dvc", "push", "-r", "staging")


def train_a_new_model(d: Demo) -> None:
    d.say("A publisher trains a new model outside the registry: an MLP on the digits, exported to ONNX.")
    out = d.work / "training"
    out.mkdir()
    code = textwrap.dedent(f"""
        import io, json, numpy as np, torch, warnings
        from torch import nn
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
        warnings.filterwarnings("ignore")
        torch.manual_seed(0); torch.set_num_threads(1)
        X, y = load_digits(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split((X / 16).astype(np.float32), y, test_size=0.25, random_state=0, stratify=y)
        Xtr, Xte, ytr, yte = map(torch.from_numpy, (Xtr, Xte, ytr, yte))
        net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
        opt = torch.optim.Adam(net.parameters(), lr=0.01)
        for _ in range(200):
            opt.zero_grad(); nn.functional.cross_entropy(net(Xtr), ytr).backward(); opt.step()
        net.eval()
        acc = float((net(Xte).argmax(1) == yte).float().mean())
        torch.onnx.export(nn.Sequential(net, nn.Softmax(-1)), (Xte[:1],), "{out}/digits-mlp.onnx", dynamo=False,
                          opset_version=17, input_names=["pixels"], output_names=["probabilities"],
                          dynamic_axes={{"pixels": {{0: "batch"}}, "probabilities": {{0: "batch"}}}})
        open("{out}/train.yaml", "w").write("epochs: 200\\nlearning_rate: 0.01\\nhidden: 32\\noptimizer: adam\\n")
        print(round(acc * 100, 1))
    """)
    (out / "train.py").write_text(code.lstrip())
    percent = d.sh(sys.executable, out / "train.py", quiet=True).stdout.strip().splitlines()[-1]
    d.files.update(weights=out / "digits-mlp.onnx", config=out / "train.yaml")
    d.facts["accuracy"] = percent
    d.say(f"test accuracy {percent}%; written: $DEMO/training/digits-mlp.onnx and train.yaml (its config)")


def open_pull_request(d: Demo) -> None:
    d.say("On a branch, `registry new` scaffolds the folder (card, config, dvc-added weights, size) "
          "and pushes the weights to staging. The publisher types the accuracy as a percentage "
          "without its unit, and adds a line by hand: the license, with a British spelling of the key.")
    d.sh("git", "checkout", "-q", "-b", BRANCH)
    d.sh("registry", "new", NEW_MODEL, "--weights", d.files["weights"], "--config", d.files["config"],
         "--task", "classification", "--project", "demo", "--source-repo", f"file://{d.clone}",
         "--metric", f"accuracy={d.facts['accuracy']}@digits-test", "--push")
    card = d.clone / "models" / NEW_MODEL / "model.yaml"
    card.write_text(card.read_text() + "licence: MIT\n")
    d.sh("cat", f"models/{NEW_MODEL}/model.yaml")
    d.sh("git", "add", f"models/{NEW_MODEL}")
    d.sh("git", "commit", "-q", "-m", f"Add {NEW_MODEL}")


@dataclass
class Fix:
    """What the publisher does about a finding whose text contains `finding`."""

    finding: str
    what: str
    apply: Callable[[str, Demo], str]


FIXES = [
    Fix("unknown field 'licence'", "rename the key to 'license', as the hint says",
        lambda card, d: card.replace("licence: MIT", "license: MIT")),
    Fix("with no unit", "write the accuracy as a ratio, as the hint says",
        lambda card, d: card.replace(f"value: {float(d.facts['accuracy'])}",
                                     f"value: {round(float(d.facts['accuracy']) / 100, 4)}")),
]


def run_bot(d: Demo, expect: int | None) -> tuple[int, str]:
    """`registry check` on the pull request, as the validation workflow runs it."""
    proc = d.sh("registry", "check", "--base", "main", "--head", BRANCH, "--format", "text", expect=expect)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"demo failed: registry check exited {proc.returncode}: {proc.stderr.strip()}")
    return proc.returncode, proc.stdout


def bot_finds_problems(d: Demo) -> None:
    d.say("The validation bot checks only the models the pull request touches, reading both "
          "revisions straight from git. Exit code 1: findings, each with file:line and the fix.")
    d.facts["report"] = run_bot(d, expect=1)[1]


def fix_until_it_passes(d: Demo) -> None:
    d.say("The publisher fixes what the report names and pushes again; the bot re-runs on every push.")
    card = d.clone / "models" / NEW_MODEL / "model.yaml"
    for round_ in range(1, 4):
        todo = [f for f in FIXES if f.finding in d.facts["report"]]
        if not todo:
            raise SystemExit("demo failed: the report names a problem this demo does not know how to fix")
        text = card.read_text()
        for fix in todo:
            print(f"  fix: {fix.what}")
            text = fix.apply(text, d)
        card.write_text(text)
        d.sh("git", "diff")
        d.sh("git", "commit", "-q", "-am", f"{NEW_MODEL}: fix the card")
        code, d.facts["report"] = run_bot(d, expect=None)
        if code == 0:
            return
    raise SystemExit("demo failed: the bot still finds problems after three rounds of fixes")


def merge(d: Demo) -> None:
    d.say("Review approves; the pull request is merged into main.")
    d.sh("git", "checkout", "-q", "main")
    d.sh("git", "merge", "-q", "--no-ff", "-m", f"Merge {BRANCH}", BRANCH)
    d.sh("git", "log", "--oneline", "-3")


STEPS: list[Step] = [
    Step("Make a throw-away copy of the registry", copy_registry),
    Step("Make the example weights", make_example_weights),
    Step("Push the example weights to the staging remote", push_examples_to_staging),
    Step("Train a new model", train_a_new_model),
    Step("Open a pull request that adds it", open_pull_request),
    Step("Run the bot on the pull request", bot_finds_problems),
    Step("Fix what the bot found, until it passes", fix_until_it_passes),
    Step("Merge the pull request", merge),
]


def main(argv: list[str] | None = None) -> int:
    """Run every step in order on a fresh temporary copy; remove it afterwards unless --keep."""
    parser = argparse.ArgumentParser(description="Walk through the registry's story on a throw-away copy.")
    parser.add_argument("--keep", action="store_true", help="keep the temporary copy and print where it is")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="registry-demo-")).resolve()
    demo = Demo(work)
    start = time.monotonic()
    try:
        for i, step in enumerate(STEPS, 1):
            print(f"\n==> [{i}/{len(STEPS)}] {step.title}", flush=True)
            step.run(demo)
        print(f"\nDone in {time.monotonic() - start:.0f} s.", end=" ")
    finally:
        if args.keep:
            print(f"The demo registry is in {demo.clone}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            print("The throw-away copy was removed (keep it with --keep).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
