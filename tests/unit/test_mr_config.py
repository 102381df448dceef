"""Mobile Router agent configuration: ``mr_agent.config.parse_config`` and ``load_config``.

A full and a minimal configuration parse to the expected typed objects. Each kind of
mistake is rejected with a :class:`ConfigError` whose problem names the source file, the
key path and what is wrong (``<file>: <key.path>: <problem>``), one problem per mistake;
several mistakes are reported together; ``key_file`` is read relative to the directory of
the configuration file, whatever the working directory.

Tests marked ``xfail(strict=True)`` document behaviour that disagrees with the module's
own contract; the reason names the disagreement.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pytest
import yaml

from mr_agent.config import (ConfigError, Liveness, MobileRouterAgentConfig, PolicyRule, Uplink,
                             load_config, parse_config)

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network
Tree = Dict[str, Any]

SOURCE = "mr-test.yaml"
KEY = bytes(range(20))
KEY2 = bytes(range(32, 52))


def full_tree() -> Tree:
    """Every key the configuration knows (as YAML would give it)."""
    return {
        "mobile_router": {
            "home_address": "2001:db8:ffff::100",
            "prefixes": ["2001:db8:1000::/48", "2001:db8:1100::/48"],
            "spi": "0x100",
            "key": "00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13",
            "nai": "mr1@example.com",
            "lifetime": 300,
            "explicit_prefixes": True,
            "gre_key": 4097,
            "downlink_key": 8193,
        },
        "home_agents": ["2001:db8:ffff::1", "2001:db8:ffff::2"],
        "home_agent_ipv4": "198.51.100.1",
        "uplinks": [
            {"name": "isp-a", "interface": "eth0",
             "care_of": ["2001:db8:a::100", "2001:db8:a::101"], "gateway": "2001:db8:a::1",
             "priority": 1, "weight": 3},
            {"name": "isp-b", "interface": "eth1", "care_of": "192.0.2.10",
             "gateway": "192.0.2.1", "priority": 2, "weight": 1},
            {"name": "lte", "interface": "wwan0-long-ok1"},  # 15 characters: allowed
        ],
        "policy": {"mode": "active-backup",
                   "rules": [{"protocol": "tcp", "port": 22, "uplink": "isp-a"},
                             {"protocol": "udp", "uplink": "lte"}]},
        "dataplane": {"table": 100},
        "state_file": "mr.state",
        "status_file": "status/mr.json",
    }


def minimal_tree() -> Tree:
    return {
        "mobile_router": {"home_address": "2001:db8:ffff::100", "spi": 256,
                          "key": KEY.hex(), "gre_key": 1},
        "home_agents": "2001:db8:ffff::1",
        "uplinks": [{"name": "isp-a", "interface": "eth0"}],
    }


def test_full_configuration() -> None:
    config = parse_config(full_tree(), SOURCE, "/etc/nemo")
    assert isinstance(config, MobileRouterAgentConfig)
    assert config.home_address == IPv6Address("2001:db8:ffff::100")
    assert config.prefixes == (IPv6Network("2001:db8:1000::/48"),
                               IPv6Network("2001:db8:1100::/48"))
    assert config.home_agents == (IPv6Address("2001:db8:ffff::1"),
                                  IPv6Address("2001:db8:ffff::2"))
    assert config.home_agent_ipv4 == IPv4Address("198.51.100.1")
    assert (config.spi, config.key, config.nai) == (0x100, KEY, "mr1@example.com")
    assert (config.lifetime, config.explicit_prefixes) == (300, True)
    assert (config.gre_key, config.downlink_key) == (4097, 8193)
    assert config.uplinks == (
        Uplink("isp-a", "eth0", (IPv6Address("2001:db8:a::100"), IPv6Address("2001:db8:a::101")),
               IPv6Address("2001:db8:a::1"), 1, 3),
        Uplink("isp-b", "eth1", (IPv4Address("192.0.2.10"),), IPv4Address("192.0.2.1"), 2, 1),
        Uplink("lte", "wwan0-long-ok1", (), None, 1, 1),
    )
    assert config.policy == "active-backup"
    assert config.rules == (PolicyRule("tcp", 22, "isp-a"), PolicyRule("udp", None, "lte"))
    assert config.dataplane == {"table": 100}
    assert config.state_file == "/etc/nemo/mr.state"
    assert config.status_file == "/etc/nemo/status/mr.json"
    assert config.source == SOURCE
    assert config.uplink("isp-b") is config.uplinks[1]
    assert config.uplink("wifi") is None


def test_minimal_configuration_takes_defaults() -> None:
    config = parse_config(minimal_tree(), SOURCE)
    assert config == MobileRouterAgentConfig(
        home_address=IPv6Address("2001:db8:ffff::100"), prefixes=(),
        home_agents=(IPv6Address("2001:db8:ffff::1"),), spi=256, key=KEY,
        uplinks=(Uplink("isp-a", "eth0"),), home_agent_ipv4=None, lifetime=600,
        explicit_prefixes=False, gre_key=1, downlink_key=None, nai=None, policy="weighted",
        rules=(), state_file=None, status_file=None, dataplane={}, source=SOURCE)


def test_liveness_defaults_and_settings() -> None:
    assert parse_config(minimal_tree(), SOURCE).liveness == Liveness(True, 50, 3, 4195)
    tree = minimal_tree()
    tree["liveness"] = {"enabled": False, "interval_ms": 20, "misses": 5, "port": 5000}
    assert parse_config(tree, SOURCE).liveness == Liveness(False, 20, 5, 5000)
    tree["liveness"] = None
    assert parse_config(tree, SOURCE).liveness == Liveness()


@pytest.mark.parametrize("lifetime", [4, 0xFFFF * 4])
def test_lifetime_bounds_are_accepted(lifetime: int) -> None:
    tree = minimal_tree()
    tree["mobile_router"]["lifetime"] = lifetime
    assert parse_config(tree, SOURCE).lifetime == lifetime


# -- one mistake at a time -----------------------------------------------------------------
def _walk(tree: Tree, parents: Sequence[str]) -> Any:
    node: Any = tree
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    return node


def drop(path: str) -> Callable[[Tree], None]:
    """Remove the key at a dotted path (list items by index)."""
    def run(tree: Tree) -> None:
        *parents, last = path.split(".")
        node = _walk(tree, parents)
        del node[int(last) if isinstance(node, list) else last]
    return run


def put(path: str, value: Any) -> Callable[[Tree], None]:
    """Set the key at a dotted path (list items by index)."""
    def run(tree: Tree) -> None:
        *parents, last = path.split(".")
        node = _walk(tree, parents)
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return run


def both(*changes: Callable[[Tree], None]) -> Callable[[Tree], None]:
    def run(tree: Tree) -> None:
        for change in changes:
            change(tree)
    return run


ROUTABLE = "is not a routable unicast address"

#: (id, change to the full tree, key path named in the problem, words in the problem)
MISTAKES: List[Any] = [
    ("liveness-not-a-mapping", put("liveness", [1]), "liveness", ["mapping"]),
    ("liveness-unknown-key", put("liveness", {"interval": 50}), "liveness.interval",
     ["unknown key", "interval_ms"]),
    ("liveness-interval-too-short", put("liveness", {"interval_ms": 5}),
     "liveness.interval_ms", ["10..60000"]),
    ("liveness-misses-zero", put("liveness", {"misses": 0}), "liveness.misses", ["1..100"]),
    ("liveness-port-too-big", put("liveness", {"port": 65535}), "liveness.port",
     ["1..65534"]),
    ("liveness-enabled-not-bool", put("liveness", {"enabled": "maybe"}), "liveness.enabled",
     ["'maybe'"]),
    # required keys
    ("missing-home-address", drop("mobile_router.home_address"), "mobile_router.home_address",
     ["missing", "required"]),
    ("null-home-address", put("mobile_router.home_address", None),
     "mobile_router.home_address", ["missing"]),
    ("missing-spi", drop("mobile_router.spi"), "mobile_router.spi", ["missing", "required"]),
    ("missing-key", drop("mobile_router.key"), "mobile_router.key",
     ["missing", "MN-HA key in hex"]),
    ("missing-gre-key", drop("mobile_router.gre_key"), "mobile_router.gre_key",
     ["missing", "required"]),
    ("missing-home-agents", drop("home_agents"), "home_agents", ["missing", "required"]),
    ("empty-home-agents", put("home_agents", []), "home_agents", ["at least one"]),
    ("missing-uplink-name", both(drop("uplinks.2.name"), drop("policy.rules.1")),
     "uplinks[2].name", ["missing"]),
    ("missing-uplink-interface", both(drop("uplinks.2.interface"), drop("policy.rules.1")),
     "uplinks[2].interface", ["missing"]),
    # unknown keys, named with the known ones
    ("unknown-top-level-key", put("home_agent", ["2001:db8:ffff::1"]), "home_agent",
     ["unknown key", "home_agents", "uplinks"]),
    ("unknown-mobile-router-key", put("mobile_router.prefix", []), "mobile_router.prefix",
     ["unknown key", "prefixes", "explicit_prefixes"]),
    ("unknown-uplink-key", put("uplinks.0.coa", "2001:db8:a::100"), "uplinks[0].coa",
     ["unknown key", "care_of"]),
    ("unknown-policy-key", put("policy.rule", []), "policy.rule", ["unknown key", "rules"]),
    ("unknown-rule-key", put("policy.rules.0.ports", [22]), "policy.rules[0].ports",
     ["unknown key", "port"]),
    # addresses
    ("bad-home-address", put("mobile_router.home_address", "2001:db8:ffff::zz"),
     "mobile_router.home_address", ["2001:db8:ffff::zz"]),
    ("ipv4-home-address", put("mobile_router.home_address", "192.0.2.100"),
     "mobile_router.home_address", ["192.0.2.100"]),
    ("bad-home-agent", put("home_agents", ["2001:db8:ffff::1", "ha2.example.com"]),
     "home_agents", ["item 1", "ha2.example.com"]),
    ("ipv4-home-agent", put("home_agents", ["198.51.100.1"]), "home_agents",
     ["item 0", "198.51.100.1"]),
    ("prefix-host-bits", put("mobile_router.prefixes", ["2001:db8:1000::1/48"]),
     "mobile_router.prefixes", ["2001:db8:1000::1/48", "host bits"]),
    ("bad-care-of", put("uplinks.0.care_of", ["2001:db8:a::100", "2001:db8:a::zz"]),
     "uplinks[0].care_of", ["item 1", "2001:db8:a::zz"]),
    ("bad-gateway", put("uplinks.0.gateway", "gw.example.com"), "uplinks[0].gateway",
     ["gw.example.com"]),
    ("link-local-care-of", put("uplinks.0.care_of", ["fe80::100"]), "uplinks[0].care_of",
     ["fe80::100", ROUTABLE]),
    ("multicast-care-of", put("uplinks.0.care_of", ["ff0e::100"]), "uplinks[0].care_of",
     ["ff0e::100", ROUTABLE]),
    ("ipv4-link-local-care-of", put("uplinks.1.care_of", "169.254.0.10"),
     "uplinks[1].care_of", ["169.254.0.10", ROUTABLE]),
    ("ipv4-multicast-care-of", put("uplinks.1.care_of", "233.252.0.1"), "uplinks[1].care_of",
     ["233.252.0.1", ROUTABLE]),
    ("loopback-care-of", put("uplinks.0.care_of", ["::1"]), "uplinks[0].care_of",
     ["::1", ROUTABLE]),
    ("unspecified-care-of", put("uplinks.0.care_of", ["::"]), "uplinks[0].care_of",
     [ROUTABLE]),
    ("ipv4-care-of-without-home-agent-ipv4", drop("home_agent_ipv4"), "uplinks[1].care_of",
     ["IPv4 care-of address needs home_agent_ipv4"]),
    # uplinks
    ("duplicate-uplink-name", put("uplinks.1.name", "isp-a"), "uplinks",
     ["name 'isp-a'", "twice"]),
    ("duplicate-uplink-interface", put("uplinks.2.interface", "eth0"), "uplinks",
     ["interface 'eth0'", "twice"]),
    ("interface-name-too-long", put("uplinks.2.interface", "wwan0-long-name1"),
     "uplinks[2].interface", ["'wwan0-long-name1'", "longer than 15 characters"]),
    ("priority-zero", put("uplinks.0.priority", 0), "uplinks[0].priority", ["1..127"]),
    ("priority-too-large", put("uplinks.0.priority", 128), "uplinks[0].priority", ["1..127"]),
    ("weight-zero", put("uplinks.0.weight", 0), "uplinks[0].weight", ["1..1000"]),
    # policy
    ("unknown-policy-mode", put("policy.mode", "round-robin"), "policy.mode",
     ["'round-robin'", "weighted", "active-backup"]),
    ("rule-unknown-protocol", put("policy.rules.0.protocol", "icmp"),
     "policy.rules[0].protocol", ["'icmp'", "tcp", "udp"]),
    ("rule-unknown-uplink", put("policy.rules.1.uplink", "wifi"), "policy.rules[1].uplink",
     ["'wifi'", "not an uplink name"]),
    ("rule-port-out-of-range", put("policy.rules.0.port", 65536), "policy.rules[0].port",
     ["1..65535"]),
    ("rule-missing-uplink", drop("policy.rules.0.uplink"), "policy.rules[0].uplink",
     ["missing"]),
    # keys and numbers
    ("key-and-key-file", put("mobile_router.key_file", "mr1.key"), "mobile_router",
     ["either key or key_file, not both"]),
    ("short-key", put("mobile_router.key", "00" * 15), "mobile_router.key",
     ["15 octets", "16"]),
    ("non-hex-key", put("mobile_router.key", "zz" * 20), "mobile_router.key", ["hexadecimal"]),
    ("unquoted-numeric-key", put("mobile_router.key", 1234567890123456789012345678901234),
     "mobile_router.key", ["quoted string"]),
    ("spi-below-256", put("mobile_router.spi", 255), "mobile_router.spi", ["255", "256.."]),
    ("spi-boolean", put("mobile_router.spi", True), "mobile_router.spi", ["integer"]),
    ("gre-key-zero", put("mobile_router.gre_key", 0), "mobile_router.gre_key", ["1.."]),
    ("downlink-key-too-large", put("mobile_router.downlink_key", 1 << 32),
     "mobile_router.downlink_key", ["1..4294967295"]),
    ("lifetime-too-small", put("mobile_router.lifetime", 3), "mobile_router.lifetime",
     ["4..262140"]),
    ("lifetime-too-large", put("mobile_router.lifetime", 0xFFFF * 4 + 1),
     "mobile_router.lifetime", ["4..262140"]),
    ("lifetime-negative", put("mobile_router.lifetime", -600), "mobile_router.lifetime",
     ["4..262140"]),
    ("lifetime-text", put("mobile_router.lifetime", "ten minutes"), "mobile_router.lifetime",
     ["ten minutes"]),
    ("explicit-prefixes-string", put("mobile_router.explicit_prefixes", "yes"),
     "mobile_router.explicit_prefixes", ["'yes'", "true or false"]),
    ("explicit-prefixes-number", put("mobile_router.explicit_prefixes", 1),
     "mobile_router.explicit_prefixes", ["true or false"]),
    ("empty-nai", put("mobile_router.nai", ""), "mobile_router.nai", ["non-empty"]),
    ("state-file-not-a-path", put("state_file", 7), "state_file", ["file path"]),
]


#: Mistakes that make other checks fail as well: (id, change, key path, words, the key
#: paths of the follow-on problems).
WITH_FOLLOW_ONS: List[Any] = [
    ("missing-uplinks", drop("uplinks"), "uplinks", ["non-empty list"],
     ["policy.rules[0].uplink", "policy.rules[1].uplink"]),
    ("empty-uplinks", put("uplinks", []), "uplinks", ["non-empty list"],
     ["policy.rules[0].uplink", "policy.rules[1].uplink"]),
    ("uplinks-not-a-list", put("uplinks", {"name": "isp-a"}), "uplinks", ["non-empty list"],
     ["policy.rules[0].uplink", "policy.rules[1].uplink"]),
    # an invalid uplink is left out, so rules naming it name an unknown uplink
    ("empty-interface-name", put("uplinks.0.interface", ""), "uplinks[0].interface",
     ["non-empty string"], ["policy.rules[0].uplink"]),
    # an invalid home_agent_ipv4 counts as absent for the IPv4 care-of address check
    ("bad-home-agent-ipv4", put("home_agent_ipv4", "198.51.100.300"), "home_agent_ipv4",
     ["198.51.100.300"], ["uplinks[1].care_of"]),
    ("ipv6-home-agent-ipv4", put("home_agent_ipv4", "2001:db8:ffff::1"), "home_agent_ipv4",
     ["2001:db8:ffff::1"], ["uplinks[1].care_of"]),
    ("uplink-not-a-mapping", put("uplinks.2", "lte"), "uplinks[2]",
     ["must be a mapping", "str"], ["uplinks[2].name", "uplinks[2].interface",
                                    "policy.rules[1].uplink"]),
]


def problems_of(tree: Any, source: str = SOURCE, base_dir: str = ".") -> List[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(tree, source, base_dir)
    error = caught.value
    assert error.problems and all(p in str(error) for p in error.problems)
    return error.problems


def the_problem(problems: Sequence[str], path: str) -> str:
    """The one problem reported at ``path`` (``<source>: <path>: <what>``)."""
    found = [p for p in problems if p.startswith(f"{SOURCE}: {path}: ")]
    assert len(found) == 1, problems
    return found[0]


@pytest.mark.parametrize("change,path,words", [m[1:] for m in MISTAKES],
                         ids=[m[0] for m in MISTAKES])
def test_each_mistake_names_file_key_path_and_problem(change: Callable[[Tree], None],
                                                      path: str, words: List[str]) -> None:
    tree = full_tree()
    change(tree)
    problems = problems_of(tree)
    assert len(problems) == 1, problems  # one mistake, one problem: no follow-on noise
    problem = the_problem(problems, path)
    for word in words:
        assert word in problem, (word, problem)


@pytest.mark.parametrize("change,path,words,follow_ons", [m[1:] for m in WITH_FOLLOW_ONS],
                         ids=[m[0] for m in WITH_FOLLOW_ONS])
def test_mistakes_with_follow_on_problems(change: Callable[[Tree], None], path: str,
                                          words: List[str], follow_ons: List[str]) -> None:
    tree = full_tree()
    change(tree)
    problems = problems_of(tree)
    problem = the_problem(problems, path)
    for word in words:
        assert word in problem, (word, problem)
    for other in follow_ons:
        the_problem(problems, other)
    assert len(problems) == 1 + len(follow_ons), problems


def test_the_same_mistakes_in_the_minimal_configuration() -> None:
    """The minimal tree is strict too: an IPv4 CoA there needs home_agent_ipv4."""
    tree = minimal_tree()
    tree["uplinks"][0]["care_of"] = ["2001:db8:a::100", "192.0.2.10"]
    problem = the_problem(problems_of(tree), "uplinks[0].care_of")
    assert "home_agent_ipv4" in problem
    tree["home_agent_ipv4"] = "198.51.100.1"
    assert parse_config(tree, SOURCE).uplinks[0].care_of == (IPv6Address("2001:db8:a::100"),
                                                             IPv4Address("192.0.2.10"))


def test_several_mistakes_are_reported_together() -> None:
    tree = full_tree()
    both(drop("mobile_router.spi"), put("uplinks.0.care_of", ["fe80::1"]),
         put("policy.mode", "random"), put("mobile_router.lifetime", 1),
         put("uplinks.1.name", "isp-a"))(tree)
    problems = problems_of(tree)
    assert len(problems) == 5, problems
    for path in ("mobile_router.spi", "uplinks[0].care_of", "policy.mode",
                 "mobile_router.lifetime", "uplinks"):
        the_problem(problems, path)


def test_missing_everything_reports_every_required_key() -> None:
    problems = problems_of({})
    for path in ("mobile_router.home_address", "mobile_router.spi", "mobile_router.key",
                 "mobile_router.gre_key", "home_agents", "uplinks"):
        the_problem(problems, path)
    assert len(problems) == 6, problems


def test_top_level_not_a_mapping() -> None:
    problems = problems_of(["mobile_router"])
    assert the_problem(problems, "(top level)").endswith("must be a mapping, got list")


def test_section_not_a_mapping() -> None:
    tree = full_tree()
    tree["policy"] = ["weighted"]
    assert "must be a mapping" in the_problem(problems_of(tree), "policy")


def test_ipv4_care_of_problem_names_its_own_uplink_after_an_invalid_one() -> None:
    tree = full_tree()
    del tree["home_agent_ipv4"]
    del tree["uplinks"][0]["interface"]  # uplinks[0] invalid; uplinks[1] has an IPv4 CoA
    problems = problems_of(tree)
    the_problem(problems, "uplinks[0].interface")
    assert "home_agent_ipv4" in the_problem(problems, "uplinks[1].care_of")


def test_non_string_policy_mode_is_one_problem() -> None:
    tree = full_tree()
    tree["policy"]["mode"] = 5
    problems = problems_of(tree)
    assert len(problems) == 1, problems
    assert "5" in the_problem(problems, "policy.mode")


# -- key_file ----------------------------------------------------------------------------------
def key_file_tree(key_file: str) -> Tree:
    tree = full_tree()
    del tree["mobile_router"]["key"]
    tree["mobile_router"]["key_file"] = key_file
    return tree


def test_key_file_is_read_relative_to_the_config_directory(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    (tmp_path / "conf" / "keys").mkdir(parents=True)
    (tmp_path / "conf" / "keys" / "mr1.key").write_text(KEY2.hex() + "\n", encoding="ascii")
    config = parse_config(key_file_tree("keys/mr1.key"), SOURCE, str(tmp_path / "conf"))
    assert config.key == KEY2
    # load_config uses the file's own directory, whatever the working directory is.
    path = tmp_path / "conf" / "mr.yaml"
    path.write_text(yaml.safe_dump(key_file_tree("keys/mr1.key")), encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = load_config(str(path))
    assert loaded.key == KEY2
    assert loaded.source == str(path)
    assert loaded.state_file == str(tmp_path / "conf" / "mr.state")
    # ... also when the path is given relative to the working directory
    monkeypatch.chdir(tmp_path)
    assert load_config("conf/mr.yaml").key == KEY2


def test_missing_key_file_names_the_path_it_tried(tmp_path: Path) -> None:
    problem = the_problem(problems_of(key_file_tree("mr1.key"), base_dir=str(tmp_path)),
                          "mobile_router.key_file")
    assert str(tmp_path / "mr1.key") in problem


def test_key_file_with_bad_content(tmp_path: Path) -> None:
    (tmp_path / "mr1.key").write_text("not a key", encoding="ascii")
    problem = the_problem(problems_of(key_file_tree("mr1.key"), base_dir=str(tmp_path)),
                          "mobile_router.key_file")
    assert "hexadecimal" in problem


# -- load_config -------------------------------------------------------------------------------
def test_load_config_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.problems == [f"{path}: cannot read: No such file or directory"]


def test_load_config_of_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "mr.yaml"
    path.write_text("mobile_router: [unclosed\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: not valid YAML")


def test_load_config_reports_problems_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "mr.yaml"
    tree = full_tree()
    tree["mobile_router"]["lifetime"] = 2
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert caught.value.problems == [f"{path}: mobile_router.lifetime: 2: must be in 4..262140"]


def test_load_config_of_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "mr.yaml"
    path.write_text(
        "mobile_router:\n"
        "  home_address: 2001:db8:ffff::100\n"
        "  spi: 0x100\n"
        f"  key: '{KEY.hex()}'\n"
        "  gre_key: 4097\n"
        "  explicit_prefixes: yes\n"  # YAML 1.1: a boolean
        "home_agents: [2001:db8:ffff::1]\n"
        "uplinks:\n"
        "  - {name: isp-a, interface: eth0, care_of: [2001:db8:a::100]}\n",
        encoding="utf-8")
    config = load_config(str(path))
    assert (config.spi, config.key, config.explicit_prefixes) == (0x100, KEY, True)
    assert config.uplinks[0].care_of == (IPv6Address("2001:db8:a::100"),)
