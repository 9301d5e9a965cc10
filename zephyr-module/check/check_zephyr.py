#!/usr/bin/env python3
"""What of the Zephyr module can be checked without Zephyr's tree (`cargo xtask test`, step
zephyr; it runs this in a venv with kconfiglib and PyYAML):

1. zephyr/module.yml against the rules of Zephyr's scripts/zephyr_module.py (its pykwalify
   METADATA_SCHEMA and validate_setting(), restated below).
2. The Kconfig tree, parsed by kconfiglib inside a small tree that stubs the Zephyr symbols it
   depends on: no warnings; CAIRNDB can be enabled on every Cortex-M core the module maps, not
   with Zephyr's littlefs; every CONFIG_CAIRNDB_* the sources and samples use exists; each
   sample's prj.conf (with its board .conf files) assigns only symbols that exist and every
   assignment takes. Writes one .config per Rust triple into OUT for the cargo check.
3. samples/zephyr/*/sample.yaml against the rules of Zephyr's
   scripts/schemas/twister/testsuite-schema.yaml for the keys used, plus twister's scenario
   naming, regexes that compile, and an overlay per allowed board.

usage: check_zephyr.py REPO OUT
"""

import os
import re
import sys

import kconfiglib
import yaml

ERRORS = []


def error(msg):
    ERRORS.append(msg)
    print(f"check_zephyr: error: {msg}")


def note(msg):
    print(f"check_zephyr: {msg}")


# --------------------------------------------------------------------------------------------
# 1. zephyr/module.yml

# The keys scripts/zephyr_module.py's METADATA_SCHEMA allows, with their types; build.settings
# takes *_root strings; blobs (not used here) a list of maps. package-managers is a later
# addition (hal_espressif's module.yml uses it).
MODULE_KEYS = {"name": str, "build": dict, "tests": list, "samples": list, "boards": list,
               "blobs": list, "package-managers": dict}
BUILD_KEYS = {"cmake": str, "kconfig": str, "cmake-ext": bool, "kconfig-ext": bool,
              "sysbuild-cmake": str, "sysbuild-kconfig": str, "sysbuild-cmake-ext": bool,
              "sysbuild-kconfig-ext": bool, "depends": list, "settings": dict}
SETTINGS_KEYS = {"board_root", "dts_root", "snippet_root", "soc_root", "arch_root",
                 "module_ext_root", "sca_root"}


def check_module_yml(repo):
    path = os.path.join(repo, "zephyr", "module.yml")
    with open(path, encoding="utf-8") as f:
        meta = yaml.safe_load(f)
    if not isinstance(meta, dict):
        error(f"{path}: not a map")
        return None
    for key, value in meta.items():
        if key not in MODULE_KEYS:
            error(f"{path}: unknown key `{key}`")
        elif not isinstance(value, MODULE_KEYS[key]):
            error(f"{path}: `{key}` must be a {MODULE_KEYS[key].__name__}")
    build = meta.get("build", {})
    for key, value in build.items():
        if key not in BUILD_KEYS:
            error(f"{path}: unknown key `build.{key}`")
        elif not isinstance(value, BUILD_KEYS[key]):
            error(f"{path}: `build.{key}` must be a {BUILD_KEYS[key].__name__}")
    for key in build.get("settings", {}) or {}:
        if key not in SETTINGS_KEYS:
            error(f"{path}: unknown key `build.settings.{key}`")
    for key in ("tests", "samples", "boards"):
        for item in meta.get(key, []) or []:
            if not isinstance(item, str):
                error(f"{path}: `{key}` entries must be strings")
            elif not os.path.isdir(os.path.join(repo, item)):
                error(f"{path}: `{key}` entry {item} is not a directory")
    # validate_setting(): the cmake folder holds a CMakeLists.txt, the kconfig file exists.
    cmake = build.get("cmake")
    if cmake is None or not os.path.isfile(os.path.join(repo, cmake, "CMakeLists.txt")):
        error(f"{path}: build.cmake must name a folder with a CMakeLists.txt")
    kconfig = build.get("kconfig")
    if kconfig is None or not os.path.isfile(os.path.join(repo, kconfig)):
        error(f"{path}: build.kconfig must name a Kconfig file")
    name = meta.get("name", os.path.basename(repo))
    note(f"zephyr/module.yml: module `{name}`, cmake {cmake}, kconfig {kconfig}, "
         f"samples {meta.get('samples')}")
    return name


# --------------------------------------------------------------------------------------------
# 2. Kconfig

# The Zephyr symbols the module's Kconfig and the samples' .conf files use, as plain stubs
# (their real definitions live in Zephyr's tree). CPU symbols are set per triple below.
STUB_KCONFIG = """\
mainmenu "cairndb Kconfig check (Zephyr symbols stubbed)"

config FLASH
\tbool "flash"
config FLASH_MAP
\tbool "flash map"
\tdepends on FLASH
config FLASH_PAGE_LAYOUT
\tbool "flash page layout"
\tdepends on FLASH
config FILE_SYSTEM_LITTLEFS
\tbool "littlefs"
config LOG
\tbool "log"
config SHELL
\tbool "shell"
config SHELL_STACK_SIZE
\tint "shell stack"
\tdepends on SHELL
\tdefault 2048
config RTC
\tbool "rtc"
config MAIN_STACK_SIZE
\tint "main stack"
\tdefault 1024
config SYS_HEAP_RUNTIME_STATS
\tbool "heap stats"
config INIT_STACKS
\tbool "init stacks"
config THREAD_STACK_INFO
\tbool "stack info"
config TEST_RANDOM_GENERATOR
\tbool "test random"
config CPU_CORTEX_M
\tbool "cortex-m"
config CPU_CORTEX_M0
\tbool "m0"
config CPU_CORTEX_M3
\tbool "m3"
config CPU_CORTEX_M4
\tbool "m4"
config CPU_CORTEX_M33
\tbool "m33"
config FP_HARDABI
\tbool "hard float abi"
config ARCH_POSIX
\tbool "posix"
config 64BIT
\tbool "64-bit"

source "{repo}/Kconfig"
"""

# Stands in for Zephyr's subsys/logging/Kconfig.template.log_config: a level choice and the
# $(module)_LOG_LEVEL int LOG_MODULE_REGISTER takes.
STUB_LOG_TEMPLATE = """\
choice "$(module)_LOG_LEVEL_CHOICE"
\tprompt "Max compiled-in log level for $(module-str)"
\tdefault $(module)_LOG_LEVEL_INF
\tdepends on LOG
config $(module)_LOG_LEVEL_OFF
\tbool "Off"
config $(module)_LOG_LEVEL_ERR
\tbool "Error"
config $(module)_LOG_LEVEL_WRN
\tbool "Warning"
config $(module)_LOG_LEVEL_INF
\tbool "Info"
config $(module)_LOG_LEVEL_DBG
\tbool "Debug"
endchoice
config $(module)_LOG_LEVEL
\tint
\tdepends on LOG
\tdefault 0 if $(module)_LOG_LEVEL_OFF
\tdefault 1 if $(module)_LOG_LEVEL_ERR
\tdefault 2 if $(module)_LOG_LEVEL_WRN
\tdefault 3 if $(module)_LOG_LEVEL_INF
\tdefault 4 if $(module)_LOG_LEVEL_DBG
"""

BASE = "CONFIG_FLASH=y\nCONFIG_FLASH_MAP=y\nCONFIG_FLASH_PAGE_LAYOUT=y\nCONFIG_LOG=y\n" \
       "CONFIG_CAIRNDB=y\n"

# The Rust triple of each core the module maps (as zephyr-lang-rust does), and the Kconfig
# that selects it: the cargo check builds each of these.
TRIPLES = {
    "thumbv6m-none-eabi": "CONFIG_CPU_CORTEX_M=y\nCONFIG_CPU_CORTEX_M0=y\n",
    "thumbv7m-none-eabi": "CONFIG_CPU_CORTEX_M=y\nCONFIG_CPU_CORTEX_M3=y\n",
    "thumbv7em-none-eabi": "CONFIG_CPU_CORTEX_M=y\nCONFIG_CPU_CORTEX_M4=y\n",
    "thumbv7em-none-eabihf": "CONFIG_CPU_CORTEX_M=y\nCONFIG_CPU_CORTEX_M4=y\n"
                             "CONFIG_FP_HARDABI=y\n",
    "thumbv8m.main-none-eabi": "CONFIG_CPU_CORTEX_M=y\nCONFIG_CPU_CORTEX_M33=y\n",
    # native_sim/native/64, the samples' integration platform.
    "x86_64-unknown-none": "CONFIG_ARCH_POSIX=y\nCONFIG_64BIT=y\n",
}


def load(kconf, text, scratch):
    """Loads `text` as a configuration fragment; returns kconfiglib's warnings."""
    with open(scratch, "w", encoding="utf-8") as f:
        f.write(text)
    kconf.warnings = []
    kconf.load_config(scratch, replace=True)
    return list(kconf.warnings)


def sym(kconf, name):
    return kconf.syms[name].str_value


def check_kconfig(repo, out):
    tree = os.path.join(out, "kconfig-tree")
    os.makedirs(os.path.join(tree, "subsys", "logging"), exist_ok=True)
    with open(os.path.join(tree, "Kconfig"), "w", encoding="utf-8") as f:
        f.write(STUB_KCONFIG.replace("{repo}", os.path.abspath(repo)))
    with open(os.path.join(tree, "subsys", "logging", "Kconfig.template.log_config"), "w",
              encoding="utf-8") as f:
        f.write(STUB_LOG_TEMPLATE)
    os.environ["srctree"] = tree
    kconf = kconfiglib.Kconfig(os.path.join(tree, "Kconfig"), warn_to_stderr=False)
    for w in kconf.warnings:
        error(f"Kconfig: {w}")
    ours = sorted(n for n in kconf.syms if n.startswith("CAIRNDB"))
    note(f"Kconfig: parsed, {len(ours)} CAIRNDB symbols")
    scratch = os.path.join(out, "fragment.conf")

    for triple, cpu in TRIPLES.items():
        for w in load(kconf, BASE + cpu, scratch):
            error(f"Kconfig ({triple}): {w}")
        if sym(kconf, "CAIRNDB") != "y":
            error(f"Kconfig ({triple}): CAIRNDB cannot be enabled")
        if sym(kconf, "CAIRNDB_LOG_LEVEL") != "3":
            error(f"Kconfig ({triple}): CAIRNDB_LOG_LEVEL is "
                  f"`{sym(kconf, 'CAIRNDB_LOG_LEVEL')}`, not the template's default 3")
        kconf.write_config(os.path.join(out, f"{triple}.config"), header="")
    note(f"Kconfig: CAIRNDB enabled for {len(TRIPLES)} Rust targets; .config files in {out}")

    # The library's own littlefs and Zephyr's may not be linked together.
    load(kconf, BASE + TRIPLES["thumbv7m-none-eabi"] + "CONFIG_FILE_SYSTEM_LITTLEFS=y\n", scratch)
    if sym(kconf, "CAIRNDB") != "n":
        error("Kconfig: CAIRNDB can be enabled together with FILE_SYSTEM_LITTLEFS")
    # Options that need others: the shell commands need the shell, the passphrase its choice.
    load(kconf, BASE + TRIPLES["thumbv7m-none-eabi"], scratch)
    if sym(kconf, "CAIRNDB_SHELL") != "n" or sym(kconf, "CAIRNDB_KEY_NONE") != "y":
        error("Kconfig: CAIRNDB_SHELL without SHELL, or a key source other than none by default")

    # Every CONFIG_CAIRNDB_* the sources, CMake code and samples name exists.
    used = set()
    for top in ("zephyr-module", "samples/zephyr", "CMakeLists.txt"):
        base = os.path.join(repo, top)
        files = [base] if os.path.isfile(base) else [
            os.path.join(d, f) for d, _, fs in os.walk(base) for f in fs]
        for path in files:
            if path.endswith((".c", ".h", ".cmake", ".txt", ".conf")):
                with open(path, encoding="utf-8") as f:
                    used |= set(re.findall(r"CONFIG_(CAIRNDB(?:_[A-Z0-9]+)*)(?![A-Z0-9_*])", f.read()))
    missing = sorted(used - set(kconf.syms))
    for name in missing:
        error(f"CONFIG_{name} is used but not defined in Kconfig")
    if not missing:
        note(f"Kconfig: the {len(used)} CONFIG_CAIRNDB_* names the code and samples use exist")

    # Each sample's configuration, per board, as the build would merge it.
    for sample in sorted(os.listdir(os.path.join(repo, "samples", "zephyr"))):
        sdir = os.path.join(repo, "samples", "zephyr", sample)
        if not os.path.isfile(os.path.join(sdir, "prj.conf")):
            continue
        for board, cpu in (("native_sim_native_64", "CONFIG_ARCH_POSIX=y\nCONFIG_64BIT=y\n"),
                           ("mps2_an385", TRIPLES["thumbv7m-none-eabi"])):
            text = cpu
            for conf in (os.path.join(sdir, "prj.conf"),
                         os.path.join(sdir, "boards", f"{board}.conf")):
                if os.path.isfile(conf):
                    with open(conf, encoding="utf-8") as f:
                        text += f.read() + "\n"
            for w in load(kconf, text, scratch):
                error(f"samples/zephyr/{sample} ({board}): {w}")
            # As Zephyr's kconfig.py does: every assignment must take (dependencies met).
            for line in text.splitlines():
                m = re.fullmatch(r"CONFIG_([A-Za-z0-9_]+)=(.*)", line.strip())
                if not m or m.group(1) not in kconf.syms:
                    continue
                want = m.group(2).strip('"')
                got = sym(kconf, m.group(1))
                if got != want:
                    error(f"samples/zephyr/{sample} ({board}): CONFIG_{m.group(1)}={want} "
                          f"did not take (got `{got}`)")
            if sym(kconf, "CAIRNDB") != "y":
                error(f"samples/zephyr/{sample} ({board}): CAIRNDB is not enabled")
            kconf.write_config(os.path.join(out, f"sample-{sample}-{board}.config"), header="")
        note(f"Kconfig: samples/zephyr/{sample}: prj.conf and board .conf files assign cleanly")


# --------------------------------------------------------------------------------------------
# 3. sample.yaml

# The scenario keys testsuite-schema.yaml allows (a test's own keys, and `common`).
SCENARIO_KEYS = {
    "arch_exclude", "arch_allow", "vendor_exclude", "vendor_allow", "testcases", "build_only",
    "build_on_all", "depends_on", "extra_args", "extra_configs", "extra_conf_files",
    "extra_overlay_confs", "extra_dtc_overlay_files", "extra_sections", "expect_reboot",
    "required_snippets", "filter", "levels", "integration_platforms", "integration_toolchains",
    "ignore_faults", "ignore_qemu_crash", "harness", "harness_config", "min_ram", "min_flash",
    "modules", "platform_exclude", "platform_allow", "platform_type", "platform_key",
    "simulation_exclude", "tags", "timeout", "toolchain_exclude", "toolchain_allow", "type",
    "skip", "slow", "sysbuild"}
BOOL_KEYS = {"build_only", "build_on_all", "expect_reboot", "ignore_faults",
             "ignore_qemu_crash", "skip", "slow", "sysbuild"}
INT_KEYS = {"min_ram", "min_flash", "timeout"}
STR_LIST_KEYS = {"testcases", "extra_configs", "extra_conf_files", "extra_overlay_confs",
                 "extra_dtc_overlay_files", "required_snippets", "integration_platforms",
                 "integration_toolchains", "modules", "vendor_exclude", "vendor_allow"}


def str_list(value):
    if isinstance(value, str):
        return value.split()
    return value if isinstance(value, list) else None


def check_scenario(where, scen, sdir, module):
    if not isinstance(scen, dict):
        error(f"{where}: must be a map")
        return
    for key, value in scen.items():
        if key not in SCENARIO_KEYS:
            error(f"{where}: unknown key `{key}`")
        elif key in BOOL_KEYS and not isinstance(value, bool):
            error(f"{where}: `{key}` must be a bool")
        elif key in INT_KEYS and not isinstance(value, int):
            error(f"{where}: `{key}` must be an int")
        elif key in STR_LIST_KEYS and not (
                isinstance(value, list) and all(isinstance(v, str) for v in value)):
            error(f"{where}: `{key}` must be a list of strings")
        elif key in ("harness", "filter") and not isinstance(value, str):
            error(f"{where}: `{key}` must be a string")
    hc = scen.get("harness_config")
    if hc is not None:
        if not isinstance(hc, dict):
            error(f"{where}: harness_config must be a map")
        else:
            if hc.get("type") not in (None, "one_line", "multi_line"):
                error(f"{where}: harness_config.type must be one_line or multi_line")
            if "ordered" in hc and not isinstance(hc["ordered"], bool):
                error(f"{where}: harness_config.ordered must be a bool")
            regexes = hc.get("regex", [])
            if not isinstance(regexes, list) or not regexes:
                error(f"{where}: harness_config.regex must be a non-empty list")
            for rx in regexes if isinstance(regexes, list) else []:
                try:
                    re.compile(rx)
                except (re.error, TypeError) as e:
                    error(f"{where}: regex {rx!r} does not compile: {e}")
            if hc.get("type") == "one_line" and isinstance(regexes, list) and len(regexes) != 1:
                error(f"{where}: a one_line harness takes exactly one regex")
    platforms = str_list(scen.get("platform_allow", []))
    if platforms is None:
        error(f"{where}: platform_allow must be a list or a string")
        platforms = []
    for p in platforms:
        overlay = os.path.join(sdir, "boards", p.replace("/", "_") + ".overlay")
        if not os.path.isfile(overlay):
            error(f"{where}: no overlay {os.path.relpath(overlay, sdir)} for {p}")
    for p in scen.get("integration_platforms", []) or []:
        if platforms and p not in platforms:
            error(f"{where}: integration platform {p} is not in platform_allow")
    if "modules" in scen and module not in scen["modules"]:
        error(f"{where}: modules does not name the module `{module}`")


def check_samples(repo, module):
    root = os.path.join(repo, "samples", "zephyr")
    count = 0
    for sample in sorted(os.listdir(root)):
        sdir = os.path.join(root, sample)
        path = os.path.join(sdir, "sample.yaml")
        if not os.path.isdir(sdir):
            continue
        for need in ("sample.yaml", "CMakeLists.txt", "prj.conf", "README.md", "src/main.c"):
            if not os.path.isfile(os.path.join(sdir, need)):
                error(f"samples/zephyr/{sample}: {need} is missing")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        where = f"samples/zephyr/{sample}/sample.yaml"
        if not isinstance(doc, dict):
            error(f"{where}: not a map")
            continue
        for key in doc:
            if key not in ("common", "sample", "tests"):
                error(f"{where}: unknown top-level key `{key}`")
        s = doc.get("sample")
        if s is not None and (not isinstance(s, dict) or not isinstance(s.get("name"), str)):
            error(f"{where}: sample.name (a string) is required")
        tests = doc.get("tests")
        if not isinstance(tests, dict) or not tests:
            error(f"{where}: tests (a non-empty map) is required")
            continue
        common = doc.get("common", {})
        check_scenario(f"{where} common", common, sdir, module)
        for name, scen in tests.items():
            # twister: scenario names are dotted (category.subsystem...).
            if not re.fullmatch(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_-]+)+", str(name)):
                error(f"{where}: scenario name `{name}` is not dot-separated words")
            merged = dict(common)
            merged.update(scen or {})
            check_scenario(f"{where} {name}", merged, sdir, module)
            if merged.get("harness") == "console" and "harness_config" not in merged:
                error(f"{where} {name}: a console harness needs harness_config")
            count += 1
    note(f"samples: {count} twister scenarios checked")


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    repo, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    module = check_module_yml(repo)
    check_kconfig(repo, out)
    check_samples(repo, module)
    if ERRORS:
        print(f"check_zephyr: {len(ERRORS)} problem(s)")
        return 1
    note("module.yml, Kconfig and sample.yaml files are consistent")
    return 0


if __name__ == "__main__":
    sys.exit(main())
