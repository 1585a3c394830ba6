"""The registry's story, end to end, on a throw-away copy of this repository.

Run it with `scripts/demo` (which sets up .venv first). Each step prints what it does and the
commands it runs, as a publisher or reviewer would type them. Nothing outside a temporary folder is
touched: the copy is a fresh clone with its own local `staging` and `public` remotes (set in its
`.dvc/config.local`) and no git remote, so a "merge" can never reach the real repository.

The story is the list `STEPS`; a later part of the registry adds its steps to that list.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NEW_MODEL = "digits-mlp"
BRANCH = f"add-{NEW_MODEL}"
WEIGHTS = f"{NEW_MODEL}.onnx"  # `registry new` keeps the file's own name


@dataclass
class Demo:
    """The state the steps share: where the throw-away registry lives and what was made so far."""

    work: Path
    clone: Path = field(init=False)
    storage: Path = field(init=False)
    origin: Path = field(init=False)
    seed: int = 0
    files: dict[str, Path] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.clone = self.work / "registry"
        self.storage = self.work / "storage"
        self.origin = self.work / "origin.git"

    @property
    def env(self) -> dict[str, str]:
        """The environment of every command: this repo's tools first, a demo git identity."""
        return {
            **os.environ,
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "DVC_NO_ANALYTICS": "1",
            "GIT_AUTHOR_NAME": "Registry Demo",
            "GIT_AUTHOR_EMAIL": "demo@registry.invalid",
            "GIT_COMMITTER_NAME": "Registry Demo",
            "GIT_COMMITTER_EMAIL": "demo@registry.invalid",
            "PYTHONWARNINGS": "ignore",
        }

    def sh(
        self, *cmd: str | Path, expect: int | None = 0, quiet: bool = False, cwd: Path | None = None
    ) -> subprocess.CompletedProcess:
        """Print and run a command in the clone; fail the demo if its exit code is not `expect`."""
        words = [str(c) for c in cmd]
        shown = " ".join(shlex.quote(self._short(w)) for w in words)
        print(f"  $ {shown}", flush=True)
        proc = subprocess.run(
            words, cwd=cwd or self.clone, env=self.env, capture_output=True, text=True
        )
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
    d.say(
        "A bare copy of this repository stands in for the git host (origin), and a fresh clone of "
        "it is the publisher's checkout. Its DVC remotes point at folders of this demo, so nothing "
        "real is touched."
    )
    d.sh("git", "clone", "-q", "--bare", "--no-hardlinks", REPO, d.origin, cwd=d.work)
    # origin's main is the commit checked out here, whatever branch (or detached HEAD) that is
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.strip()
    d.sh("git", "--git-dir", d.origin, "update-ref", "refs/heads/main", head, cwd=d.work)
    d.sh("git", "--git-dir", d.origin, "symbolic-ref", "HEAD", "refs/heads/main", cwd=d.work)
    d.sh("git", "clone", "-q", d.origin, d.clone, cwd=d.work)
    d.sh("git", "checkout", "-q", "-B", "main")
    for remote in ("staging", "public"):
        d.sh("dvc", "remote", "modify", remote, "url", d.storage / remote)
    d.sh("git", "commit", "-q", "-am", "Point the DVC remotes at the demo's storage")
    d.sh("git", "push", "-q", "origin", "HEAD:main")


def fetch_example_weights(d: Demo) -> None:
    d.say(
        "The example models' weights ship with the repository as a small DVC remote folder "
        "(examples/store, see examples/README.md), so a fresh clone gets exactly the bytes its "
        ".dvc pointers name, on any machine, with no network. They go to the staging remote, "
        "and the bot checks every model, confirming their training code (this repository's "
        "scripts/make-examples, at the commit the cards name) without the network:"
    )
    d.sh("dvc", "pull", "-q", "-r", "examples")
    d.sh("dvc", "push", "-q", "-r", "staging")
    report = d.sh("registry", "check", "--all", quiet=True).stdout.splitlines()
    for line in report:
        if line.startswith(("PASS", "FAIL")) or " models checked" in line:
            print(f"    {line}")


def retrain_examples(d: Demo) -> None:
    d.say(
        "Retraining reproduces the examples' behaviour, not their bytes: another CPU rounds "
        "differently. `make-examples --check` retrains them in memory and compares interface "
        "and metrics with what is committed, within stated tolerances; nothing is rewritten."
    )
    args = ["--seed", str(d.seed)] if d.seed else []
    d.sh(sys.executable, "scripts/make-examples", "--check", *args)
    d.sh("git", "status", "--short")
    d.say("(no changes: the committed examples stay as they are)")


TRAIN = """
import sys, numpy as np, torch, warnings
from torch import nn
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
warnings.filterwarnings("ignore")
out, hidden, epochs, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.manual_seed(seed); torch.set_num_threads(1)
X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split((X / 16).astype(np.float32), y, test_size=0.25,
                                      random_state=0, stratify=y)
np.savez(f"{out}/eval.npz", pixels=Xte, labels=yte.astype(np.int64))
Xtr, Xte, ytr, yte = map(torch.from_numpy, (Xtr, Xte, ytr, yte))
net = nn.Sequential(nn.Linear(64, hidden), nn.ReLU(), nn.Linear(hidden, 10))
opt = torch.optim.Adam(net.parameters(), lr=0.01)
for _ in range(epochs):
    opt.zero_grad(); nn.functional.cross_entropy(net(Xtr), ytr).backward(); opt.step()
net.eval()
acc = float((net(Xte).argmax(1) == yte).float().mean())
torch.onnx.export(nn.Sequential(net, nn.Softmax(-1)), (Xte[:1],), f"{out}/digits-mlp.onnx",
                  dynamo=False, opset_version=17, input_names=["pixels"],
                  output_names=["probabilities"],
                  dynamic_axes={"pixels": {0: "batch"}, "probabilities": {0: "batch"}})
open(f"{out}/train.yaml", "w").write(
    f"epochs: {epochs}\\nlearning_rate: 0.01\\nhidden: {hidden}\\noptimizer: adam\\n")
print(round(acc * 100, 1))
"""


def train(d: Demo, out: Path, hidden: int, epochs: int) -> str:
    """Train the demo's digits MLP into `out` (ONNX, config, evaluation set); return the accuracy
    in %."""
    out.mkdir(parents=True, exist_ok=True)
    script = d.work / "train.py"
    script.write_text(TRAIN.lstrip())
    return (
        d.sh(sys.executable, script, out, str(hidden), str(epochs), str(d.seed), quiet=True)
        .stdout.strip()
        .splitlines()[-1]
    )


def train_a_new_model(d: Demo) -> None:
    d.say(
        "A publisher trains a new model outside the registry: an MLP on the digits, exported to "
        "ONNX."
    )
    out = d.work / "training"
    percent = train(d, out, hidden=32, epochs=200)
    d.files.update(
        weights=out / "digits-mlp.onnx", config=out / "train.yaml", eval=out / "eval.npz"
    )
    d.facts["accuracy"] = percent
    d.say(
        f"test accuracy {percent}%; written: $DEMO/training/digits-mlp.onnx and train.yaml (its "
        f"config)"
    )


def open_pull_request(d: Demo) -> None:
    d.say(
        "On a branch, `registry new` scaffolds the folder (card, config, dvc-added weights, size) "
        "and pushes the weights to staging. The publisher types the accuracy as a percentage "
        "without its unit, and adds a line by hand: the license, with a British spelling of the "
        "key."
    )
    d.sh("git", "checkout", "-q", "-b", BRANCH)
    d.sh(
        "registry",
        "new",
        NEW_MODEL,
        "--weights",
        d.files["weights"],
        "--config",
        d.files["config"],
        "--task",
        "classification",
        "--project",
        "demo",
        "--source-repo",
        f"file://{d.clone}",
        "--metric",
        f"accuracy={d.facts['accuracy']}@digits-test",
        "--push",
    )
    card = d.clone / "models" / NEW_MODEL / "model.yaml"
    card.write_text(card.read_text() + "licence: MIT\n")
    d.sh("cat", f"models/{NEW_MODEL}/model.yaml")
    d.sh("git", "add", f"models/{NEW_MODEL}", "dvc.yaml")
    d.sh("git", "commit", "-q", "-m", f"Add {NEW_MODEL}")


@dataclass
class Fix:
    """What the publisher does about a finding whose text contains `finding`."""

    finding: str
    what: str
    apply: Callable[[str, Demo], str]


FIXES = [
    Fix(
        "unknown field 'licence'",
        "rename the key to 'license', as the hint says",
        lambda card, d: card.replace("licence: MIT", "license: MIT"),
    ),
    Fix(
        "with no unit",
        "write the accuracy as a ratio, as the hint says",
        lambda card, d: card.replace(
            f"value: {float(d.facts['accuracy'])}",
            f"value: {round(float(d.facts['accuracy']) / 100, 4)}",
        ),
    ),
]


def run_bot(d: Demo, expect: int | None) -> tuple[int, str]:
    """`registry check` on the pull request, as the validation workflow runs it."""
    proc = d.sh(
        "registry",
        "check",
        "--base",
        "main",
        "--head",
        BRANCH,
        "--format",
        "text",
        "--allow-local-urls",
        expect=expect,
    )
    if proc.returncode not in (0, 1):
        raise SystemExit(
            f"demo failed: registry check exited {proc.returncode}: {proc.stderr.strip()}"
        )
    return proc.returncode, proc.stdout


def bot_finds_problems(d: Demo) -> None:
    d.say(
        "The validation bot checks only the models the pull request touches, reading both "
        "revisions straight from git. Exit code 1: findings, each with file:line and the fix."
    )
    d.facts["report"] = run_bot(d, expect=1)[1]


def fix_until_it_passes(d: Demo) -> None:
    d.say(
        "The publisher fixes what the report names and pushes again; the bot re-runs on every push."
    )
    card = d.clone / "models" / NEW_MODEL / "model.yaml"
    for _round in range(1, 4):
        todo = [f for f in FIXES if f.finding in d.facts["report"]]
        if not todo:
            raise SystemExit(
                "demo failed: the report names a problem this demo does not know how to fix"
            )
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


def merge_branch(d: Demo, branch: str) -> None:
    """Review approves; the branch is merged into main and pushed to origin."""
    d.sh("git", "checkout", "-q", "main")
    d.sh("git", "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
    d.sh("git", "push", "-q", "origin", "main")


def merge(d: Demo) -> None:
    d.say("Review approves; the pull request is merged into main.")
    merge_branch(d, BRANCH)
    d.sh("git", "log", "--oneline", "-3")


def publish_merge(d: Demo) -> None:
    """What the publish workflow runs on the push to main."""
    d.sh("registry", "publish", "--base", "main~1", "--head", "main")
    d.sh("git", "commit", "-q", "-am", "Release notes [skip ci]", expect=None, quiet=True)
    d.sh("git", "push", "-q", "origin", "main")


def publish_first_version(d: Demo) -> None:
    d.say(
        "The publisher asks to publish version 1.0.0: `publish-request` edits the card on a new "
        "branch. The bot checks it and shows the release notes the merge will publish."
    )
    proc = d.sh(
        "registry",
        "publish-request",
        NEW_MODEL,
        "--version",
        "1.0.0",
        "--format",
        "json",
        quiet=True,
    )
    branch = json.loads(proc.stdout)["branch"]
    d.sh("git", "diff", "main", branch)
    d.sh("registry", "check", "--base", "main", "--head", branch, "--offline", "--allow-local-urls")
    merge_branch(d, branch)
    d.say(
        "On the push to main, the publish workflow copies the weights staging -> public, verifies "
        "them there, tags the version with its notes and writes CHANGELOG.md:"
    )
    publish_merge(d)
    d.sh("git", "tag", "-n3", "--list", f"{NEW_MODEL}@*")


def publish_second_version(d: Demo) -> None:
    d.say(
        "A new version: retrained with a wider hidden layer. The publisher replaces the weights, "
        "pushes them to staging and raises the version to 1.1.0 with the new accuracy."
    )
    out = d.work / "training-v2"
    percent = train(d, out, hidden=64, epochs=400)
    d.sh("git", "checkout", "-q", "-b", f"update-{NEW_MODEL}")
    folder = d.clone / "models" / NEW_MODEL
    shutil.copyfile(out / WEIGHTS, folder / WEIGHTS)
    shutil.copyfile(out / "train.yaml", folder / "config.yaml")
    d.sh("dvc", "add", "-q", f"models/{NEW_MODEL}/{WEIGHTS}")
    d.sh("dvc", "push", "-q", "-r", "staging", f"models/{NEW_MODEL}/{WEIGHTS}.dvc")
    size = (folder / WEIGHTS).stat().st_size
    card = folder / "model.yaml"
    text = card.read_text()
    text = re.sub(r"^version: .*$", "version: 1.1.0", text, flags=re.M)
    text = re.sub(r"^status: .*$", "status: updated", text, flags=re.M)
    text = re.sub(r"^size: \d+", f"size: {size}", text, flags=re.M)
    text = re.sub(
        r"(- name: accuracy\n\s+value: )[0-9.]+", rf"\g<1>{round(float(percent) / 100, 4)}", text
    )
    card.write_text(text)
    d.sh("git", "diff", "--", f"models/{NEW_MODEL}/model.yaml")
    d.sh("git", "commit", "-q", "-am", f"{NEW_MODEL} 1.1.0: wider hidden layer")
    d.say(
        "The bot's report carries the draft release notes: what changed in the card, the metric "
        "delta, and the model's own diff."
    )
    d.sh(
        "registry",
        "check",
        "--base",
        "main",
        "--head",
        f"update-{NEW_MODEL}",
        "--offline",
        "--allow-local-urls",
    )
    merge_branch(d, f"update-{NEW_MODEL}")
    publish_merge(d)


def show_release_notes(d: Demo) -> None:
    d.sh("registry", "notes", NEW_MODEL, "--from", "1.0.0", "--to", "1.1.0")
    d.sh("registry", "show", NEW_MODEL)


def consumer_pulls(d: Demo) -> None:
    d.say(
        "A consumer, in a folder of their own, fetches exact versions from the public remote by "
        "the "
        "registry's git URL, then checks the files against the hashes the version tags record."
    )
    consumer = d.work / "consumer"
    consumer.mkdir()
    for spec, out in ((f"{NEW_MODEL}@1.0.0", "v1"), (f"{NEW_MODEL}@latest", "latest")):
        d.sh("registry", "pull", spec, "-o", out, "--repo", f"file://{d.origin}", cwd=consumer)
    for version, out in (("1.0.0", "v1"), ("1.1.0", "latest")):
        pointer = d.sh(
            "git", "show", f"{NEW_MODEL}@v{version}:models/{NEW_MODEL}/{WEIGHTS}.dvc", quiet=True
        ).stdout
        want = re.search(r"md5: ([0-9a-f]{32})", pointer).group(1)
        got = hashlib.md5((consumer / out / WEIGHTS).read_bytes()).hexdigest()
        if got != want:
            raise SystemExit(f"demo failed: {out}/{WEIGHTS} has md5 {got}, the tag records {want}")
        print(f"  {out}/{WEIGHTS}: md5 {got} = what {NEW_MODEL}@v{version} records")


def build_device_package(d: Demo) -> None:
    d.say(
        "A version tag also builds device packages: convert, verify against the published ONNX, "
        "time the candidate engines, pack, push to the public remote. A consumer pulls the package "
        "by target and runs it on one sample."
    )
    dist = d.work / "dist"
    d.sh("registry", "package", f"{NEW_MODEL}@1.1.0", "--target", "linux-x86_64", "--out", dist)
    d.sh("registry", "push-packages", f"{NEW_MODEL}@1.1.0", dist)
    consumer = d.work / "consumer"
    consumer.mkdir(exist_ok=True)
    d.sh(
        "registry",
        "pull",
        f"{NEW_MODEL}@1.1.0",
        "--target",
        "linux-x86_64",
        "-o",
        "pkg",
        "--repo",
        f"file://{d.origin}",
        cwd=consumer,
    )
    sample = d.work / "sample.npy"
    import numpy as np

    np.save(sample, np.load(d.files["eval"])["pixels"][:1])
    d.sh(
        "registry",
        "run",
        consumer / "pkg" / f"{NEW_MODEL}-1.1.0-linux-x86_64.tar.gz",
        "--input",
        sample,
    )


def compress_a_version(d: Demo) -> None:
    d.say(
        "Lightweighting: reach a size target with at most 1% accuracy drop, trying methods "
        "cheapest first; the result is a new model entry derived from 1.1.0."
    )
    folder = d.clone / "models" / NEW_MODEL
    shutil.copyfile(d.files["eval"], folder / "eval.npz")
    card = folder / "model.yaml"
    card.write_text(
        card.read_text()
        + "evaluation:\n  data: eval.npz\n  metric: accuracy\n  dataset: digits-test\n"
    )
    d.sh(
        "registry",
        "compress",
        "--model",
        folder / WEIGHTS,
        "--card",
        card,
        "--max-size",
        "12KB",
        "--max-drop",
        "1%",
        "--output-dir",
        d.work / "compressed",
        "--report-dir",
        d.work / "compress-report",
    )
    d.sh("git", "checkout", "-q", "--", f"models/{NEW_MODEL}/model.yaml")
    (folder / "eval.npz").unlink()


def train_in_the_registry(d: Demo) -> None:
    d.say(
        "Training is declared in the repository too: datasets/ (data in DVC), training/ (layers, "
        "structures, algorithms, tasks). The bot checks the files, then one instance of the wine "
        "task trains in a worker process, with its metrics, plots and ONNX weights as results."
    )
    d.sh(sys.executable, "scripts/make-datasets")
    d.sh("registry", "train", "check")
    d.sh("registry", "train", "wine-mlp", "--instance", "mlp-hidden-16", "--progress", "plain")
    d.sh("registry", "train", "results", "wine-mlp")


def unpublish(d: Demo) -> None:
    d.say(
        "The model is withdrawn: `unpublish` asks for status offline in a pull request. After the "
        "merge, its objects stay on public so pinned consumers still get them, with a warning."
    )
    proc = d.sh("registry", "unpublish", NEW_MODEL, "--format", "json", quiet=True)
    branch = json.loads(proc.stdout)["branch"]
    d.sh("registry", "check", "--base", "main", "--head", branch, "--offline", "--allow-local-urls")
    merge_branch(d, branch)
    publish_merge(d)
    consumer = d.work / "consumer"
    d.sh(
        "registry",
        "pull",
        f"{NEW_MODEL}@1.0.0",
        "-o",
        "v1-again",
        "--repo",
        f"file://{d.origin}",
        cwd=consumer,
    )
    d.sh("registry", "list")


def build_the_catalog(d: Demo) -> None:
    d.say(
        "Every publish also rebuilds the public catalog: a static site of the published models, "
        "with "
        "their versions, notes, metrics and pull commands, deployed to GitHub Pages by the publish "
        "workflow. Built here from the clone:"
    )
    site = d.work / "site"
    d.sh("registry", "catalog", "build", "-o", site)
    d.say(
        f"Open {site / 'index.html'} in a browser, or preview it with `registry catalog serve -d "
        f"{site}` "
        "(run the demo with --keep, or the copy is removed at the end)."
    )


STEPS: list[Step] = [
    Step("Make a throw-away copy of the registry", copy_registry),
    Step("Fetch the example weights; the bot checks every model", fetch_example_weights),
    Step("Retrain the examples and compare", retrain_examples),
    Step("Train a new model", train_a_new_model),
    Step("Open a pull request that adds it", open_pull_request),
    Step("Run the bot on the pull request", bot_finds_problems),
    Step("Fix what the bot found, until it passes", fix_until_it_passes),
    Step("Merge the pull request", merge),
    Step("Publish version 1.0.0", publish_first_version),
    Step("Publish version 1.1.0 with new weights and metrics", publish_second_version),
    Step("Read the release notes", show_release_notes),
    Step("A consumer pulls both versions and checks their hashes", consumer_pulls),
    Step("Build a device package; a consumer pulls it by target and runs it", build_device_package),
    Step("Compress the model to a size target", compress_a_version),
    Step("Train one instance of a training task", train_in_the_registry),
    Step("Unpublish; pulling a withdrawn version warns", unpublish),
    Step("Build the public catalog", build_the_catalog),
]


def main(argv: list[str] | None = None) -> int:
    """Run every step in order on a fresh temporary copy; remove it afterwards unless --keep."""
    parser = argparse.ArgumentParser(
        description="Walk through the registry's story on a throw-away copy."
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary copy and print where it is"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of every training run (default 0); another seed changes every "
        "trained byte, as another machine's floating-point results would",
    )
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="registry-demo-")).resolve()
    demo = Demo(work, seed=args.seed)
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
