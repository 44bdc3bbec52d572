"""Execution settings: the runtime.compile policy and the host allocator tuning."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import torch

from longtail.config import load_config
from longtail.engine import accel
from longtail.engine.accel import COMPILE_AUTO_MIN_STEPS, Accel, apply_allocator, cpu_flags, resolve_compile
from longtail.errors import ConfigError

CPU = torch.device("cpu")


def test_explicit_compile_settings_are_obeyed_whatever_the_run_length():
    assert resolve_compile(True, CPU, 1) == (True, "runtime.compile=true")
    assert resolve_compile(False, CPU, 10**9) == (False, "runtime.compile=false")


def test_auto_compiles_long_runs_only_when_a_cpp_compiler_exists(monkeypatch):
    monkeypatch.setattr(accel.shutil, "which", lambda name: f"/usr/bin/{name}")
    on, why = resolve_compile("auto", CPU, COMPILE_AUTO_MIN_STEPS)
    assert on and "C++ compiler" in why and f"{COMPILE_AUTO_MIN_STEPS:,} training steps" in why
    off, why = resolve_compile("auto", CPU, COMPILE_AUTO_MIN_STEPS - 1)
    assert not off and "too few to repay compilation" in why

    monkeypatch.setattr(accel.shutil, "which", lambda name: None)
    off, why = resolve_compile("auto", CPU, 10**6)
    assert not off and "no C++ compiler" in why


def test_auto_does_not_compile_on_devices_without_a_backend():
    off, why = resolve_compile("auto", torch.device("meta"), 10**6)
    assert not off and "meta" in why


def test_bad_compile_and_allocator_settings_name_the_choices(tmp_path):
    with pytest.raises(ConfigError, match="must be true, false or auto"):
        resolve_compile("yes", CPU, 10)
    with pytest.raises(ConfigError, match="Accel.compile must be true or false"):
        Accel(compile="auto")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="runtime.allocator"):
        apply_allocator("jemalloc", CPU)
    with pytest.raises(ConfigError, match="choose true, false or auto"):
        load_config(None, ["runtime.compile=sometimes"])
    with pytest.raises(ConfigError, match="'runtime.allocator'.*tuned, system"):
        load_config(None, ["runtime.allocator=jemalloc"])
    assert load_config(None, ["runtime.compile=true"]).runtime.compile is True
    assert load_config(None, []).runtime.compile == "auto"


def test_system_allocator_and_accelerators_leave_glibc_alone():
    assert apply_allocator("system", CPU) is False
    assert apply_allocator("tuned", torch.device("meta")) is False


FAULTS = textwrap.dedent(
    """
    import json, resource
    import torch
    from longtail.engine.accel import tune_allocator

    def faults_per_cycle():
        # like a training step: eight 4 MiB activations alive at once, then all freed
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        held = []
        for _ in range(8):
            held.append(torch.empty(4 << 20, dtype=torch.uint8).fill_(1))
        del held
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    tuned = tune_allocator()
    print(json.dumps({"tuned": tuned, "faults": [faults_per_cycle() for _ in range(6)]}))
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_tuned_allocator_reuses_freed_memory_instead_of_faulting_it_in_again():
    pages = 8 * (4 << 20) // 4096
    out = subprocess.run([sys.executable, "-c", FAULTS], capture_output=True, text=True, check=True, timeout=120)
    tuned = json.loads(out.stdout.strip().splitlines()[-1])
    assert tuned["tuned"] is True
    # the first cycle faults the 32 MiB in; once the heap has settled the same pages are reused.
    # (glibc's adaptive defaults sometimes settle too and sometimes fault every cycle — measured in
    # README "Speed": ~3,000 faults per eager ResNet-32 step, 35,000 compiled — so they are not asserted.)
    assert tuned["faults"][0] > 0.9 * pages
    assert max(tuned["faults"][-3:]) < 0.01 * pages


@pytest.mark.skipif(not accel.compiler_available(CPU)[0], reason="torch.compile needs a C++ compiler on CPU")
def test_a_compiled_run_trains_and_saves_plain_parameter_names(write_config, tmp_path):
    from longtail.engine.checkpoint import latest_checkpoint, load_checkpoint
    from longtail.engine.trainer import fit

    # one batch shape (drop_last) so that one graph is compiled
    config = load_config(write_config(train={"epochs": 1, "drop_last": True}, runtime={"compile": True}))
    results = fit(config, tmp_path / "run")
    assert results["timing"]["compile"] is True
    assert results["timing"]["compile_reason"] == "runtime.compile=true"
    state = load_checkpoint(latest_checkpoint(tmp_path / "run" / "checkpoints"))
    assert not any("_orig_mod" in key for key in state["model"])
    assert 0.0 <= results["balanced_accuracy"] <= 1.0


def test_compile_auto_counts_the_whole_run_so_a_resumed_run_decides_the_same(write_config, tmp_path, monkeypatch):
    from longtail.engine import trainer

    seen = []

    def record(setting, device, planned_steps):
        seen.append((setting, planned_steps))
        return False, "recorded"

    monkeypatch.setattr(trainer, "resolve_compile", record)
    config = load_config(write_config(train={"epochs": 3, "checkpoint_keep": 5}))
    run = tmp_path / "run"
    results = trainer.fit(config, run)
    assert results["timing"]["compile_reason"] == "recorded"
    # kill-and-resume after epoch 1: drop the later checkpoints, then resume
    for name in ("ckpt-0002.pt", "ckpt-0003.pt"):
        (run / "checkpoints" / name).unlink()
    trainer.fit(config, run, resume=True)
    steps_per_epoch = -(-118 // 32)  # 118 training images in batches of 32, last one kept
    assert seen == [("auto", 3 * steps_per_epoch), ("auto", 3 * steps_per_epoch)]


@pytest.mark.parametrize("env, capped", [
    ({}, False),
    ({"ATEN_CPU_CAPABILITY": "avx2"}, True),
    ({"ATEN_CPU_CAPABILITY": "default"}, True),
    ({"ATEN_CPU_CAPABILITY": "avx512"}, False),
    ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),
    ({"ONEDNN_MAX_CPU_ISA": "avx512_core"}, True),
    ({"DNNL_MAX_CPU_ISA": "AVX512_CORE_VNNI"}, True),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}, False),
    ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, False),
    ({"ONEDNN_MAX_CPU_ISA": "ALL"}, False),
])
def test_an_isa_cap_below_bf16_is_recognised(env, capped):
    assert accel.isa_capped_below_bf16(env) is capped


def test_precision_auto_is_fp32_when_an_avx2_machine_is_emulated(monkeypatch):
    # ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 on a bf16 CPU stands for an AVX2-only machine:
    # auto must resolve as it would there, whatever this CPU's flags say
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert Accel(device="cpu", precision="auto").resolved_precision == "fp32"
    assert Accel(device="cpu", precision="bf16").resolved_precision == "bf16"  # an explicit choice is obeyed


@pytest.mark.parametrize("flags, native", [
    (["avx2", "fma"], False),                          # the AVX2 EPYC
    (["avx2", "fma", "avx512f"], False),               # AVX-512 without bf16 dot products
    (["avx2", "avx512f", "avx512_bf16"], True),        # Zen 4/5
    (["avx2", "avx512f", "amx_bf16", "amx_tile"], True),  # Sapphire Rapids
])
def test_native_bf16_reads_the_cpu_flags(monkeypatch, flags, native):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    monkeypatch.setattr(accel, "cpu_flags", lambda: flags)
    assert accel.native_bf16(CPU) is native
    assert Accel(device="cpu", precision="auto").resolved_precision == ("bf16" if native else "fp32")


def test_cpu_flags_are_a_subset_of_what_lscpu_lists():
    import pathlib

    assert set(cpu_flags()) <= {"avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    text = pathlib.Path("/proc/cpuinfo").read_text() if pathlib.Path("/proc/cpuinfo").is_file() else ""
    listed = next((line for line in text.splitlines() if line.startswith("flags")), "").split(":")[-1].split()
    assert all(flag in listed for flag in cpu_flags())


@pytest.mark.skipif(not accel.compiler_available(CPU)[0], reason="torch.compile needs a C++ compiler on CPU")
@pytest.mark.skipif("avx512f" not in cpu_flags(), reason="the heap corruption this guards against needs inductor's AVX-512 code")
def test_compiled_normed_head_trains_in_fp32():
    # torch 2.13.0 + AVX-512 (Zen 5): compiling ResNet-32 + the normed-linear head (LDAM) in fp32,
    # channels-last, batch 128 crashed the process (glibc malloc assertion / SIGSEGV) until the head was
    # kept out of the graph (models/heads.py). Run in a child so that a crash fails this test only.
    script = textwrap.dedent("""
        import torch
        from longtail.engine.accel import Accel, maybe_compile, prepare_model
        from longtail.models.resnet_cifar import resnet32
        torch.manual_seed(0)
        model = resnet32(num_classes=10, in_channels=1, head="normed-linear")
        accel = Accel(device="cpu", channels_last=True, precision="fp32", compile=True)
        model = prepare_model(model, accel)
        step = maybe_compile(model, accel)
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        for _ in range(3):
            x = torch.randn(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
            _, logits = step(x)
            loss = torch.nn.functional.cross_entropy(30 * logits, torch.randint(0, 10, (128,)))
            opt.zero_grad(); loss.backward(); opt.step()
        print("ok", bool(torch.isfinite(loss)))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["ok", "True"]
