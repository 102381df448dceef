"""Home Agent configuration: ``parse_config`` and ``load_config``.

A full and a minimal configuration are accepted and typed. Each kind of mistake is
rejected with a :class:`ConfigError` whose problem names the source file, the key path
and what is wrong; several mistakes are reported together; ``load_config`` turns an
unreadable file or invalid YAML into a ConfigError too.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

import pytest

from ryu_apps.config import (DEFAULT_LIVENESS_PORT, ConfigError, HomeAgentConfig, Limits,
                             default_gre_key, load_config, parse_config)

IPv6Address = ipaddress.IPv6Address
IPv4Address = ipaddress.IPv4Address
IPv6Network = ipaddress.IPv6Network
Tree = Dict[str, Any]

SOURCE = "ha-test.yaml"
KEY1 = bytes(range(20))
KEY2 = bytes(range(32, 48))


def full_tree() -> Tree:
    """Every key the configuration knows."""
    return {
        "home_agent": {"addresses": ["2001:db8:ffff::1", "2001:db8:ffff::2"],
                       "ipv4_address": "198.51.100.1",
                       "home_prefixes": ["2001:db8:ffff::/64", "2001:db8:fffe::/64"]},
        "datapath": {"dpid": "0x2a", "uplink_port": "uplink", "tunnel_port": "gre0"},
        "openflow": {"listen_host": "::1", "listen_port": 6633},
        "upstream": {"next_hop": "2001:db8:fffd::1", "next_hop_mac": "02:00:00:00:00:AB"},
        "limits": {"max_lifetime": 300, "max_care_of_addresses": 4, "packet_in_rate": 500,
                   "packet_in_burst": 50, "replay_window": 3.5, "expiry_interval": 0.5},
        "mobile_routers": [
            {"name": "mr1", "home_address": "2001:db8:ffff::100",
             "prefixes": ["2001:db8:1000::/48", "2001:db8:1100::/48"], "spi": 256,
             "key": "00:01:02:03:04:05:06:07:08:09:0a:0b:0c:0d:0e:0f:10:11:12:13",
             "gre_key": 1001, "policy": "priority", "nai": "mr1@example.com",
             "mobile_router": True},
            {"name": "mn2", "home_address": "2001:db8:fffe::200", "spi": "0x200",
             "key": "0x" + KEY2.hex().upper(), "mobile_router": False},
        ],
    }


def minimal_tree() -> Tree:
    return {
        "home_agent": {"addresses": "2001:db8:ffff::1", "home_prefixes": "2001:db8:ffff::/64"},
        "datapath": {"uplink_port": "uplink", "tunnel_port": "gre0"},
        "upstream": {"next_hop_mac": "02:00:00:00:00:01"},
    }


def test_full_configuration() -> None:
    config = parse_config(full_tree(), SOURCE)
    assert isinstance(config, HomeAgentConfig)
    assert config.addresses == (IPv6Address("2001:db8:ffff::1"), IPv6Address("2001:db8:ffff::2"))
    assert config.tunnel_source == IPv6Address("2001:db8:ffff::1")
    assert config.ipv4_address == IPv4Address("198.51.100.1")
    assert config.home_prefixes == (IPv6Network("2001:db8:ffff::/64"),
                                    IPv6Network("2001:db8:fffe::/64"))
    assert (config.dpid, config.uplink_port, config.tunnel_port) == (42, "uplink", "gre0")
    assert (config.listen_host, config.listen_port) == ("::1", 6633)
    assert config.next_hop == IPv6Address("2001:db8:fffd::1")
    assert config.next_hop_mac == "02:00:00:00:00:ab"
    assert config.limits == Limits(300, 4, 500, 50, 3.5, 0.5)
    assert config.source == SOURCE
    mr1, mn2 = config.mobile_routers
    assert (mr1.name, mr1.home_address, mr1.spi, mr1.key, mr1.gre_key, mr1.policy, mr1.nai,
            mr1.mobile_router) == ("mr1", IPv6Address("2001:db8:ffff::100"), 256, KEY1, 1001,
                                   "priority", "mr1@example.com", True)
    assert mr1.prefixes == (IPv6Network("2001:db8:1000::/48"), IPv6Network("2001:db8:1100::/48"))
    assert (mn2.spi, mn2.key, mn2.prefixes, mn2.policy, mn2.nai, mn2.mobile_router) == \
        (0x200, KEY2, (), "weighted", None, False)
    assert mn2.gre_key == default_gre_key("mn2") != 0
    assert config.router_by_home_address(IPv6Address("2001:db8:fffe::200")) is mn2
    assert config.router_by_home_address(IPv6Address("2001:db8:ffff::999")) is None


def test_minimal_configuration_takes_defaults() -> None:
    config = parse_config(minimal_tree(), SOURCE)
    assert config.addresses == (IPv6Address("2001:db8:ffff::1"),)
    assert config.mobile_routers == ()
    assert config.limits == Limits()
    assert (config.ipv4_address, config.dpid, config.next_hop) == (None, None, None)
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 6653)


def test_liveness_port_default_other_and_off() -> None:
    tree = full_tree()
    mr1 = parse_config(tree, SOURCE).mobile_routers[0]
    assert mr1.liveness == (IPv6Address("2001:db8:ffff::1"), DEFAULT_LIVENESS_PORT)
    tree["home_agent"]["liveness_port"] = 5000
    assert {r.liveness for r in parse_config(tree, SOURCE).mobile_routers} == \
        {(IPv6Address("2001:db8:ffff::1"), 5000)}
    for off in (0, None):
        tree["home_agent"]["liveness_port"] = off
        assert {r.liveness for r in parse_config(tree, SOURCE).mobile_routers} == {None}


# -- one mistake at a time -----------------------------------------------------------------
def drop(path: str) -> Callable[[Tree], None]:
    """Remove the key at a dotted path (list items by index)."""
    def run(tree: Tree) -> None:
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        del node[last]
    return run


def put(path: str, value: Any) -> Callable[[Tree], None]:
    """Set the key at a dotted path (list items by index)."""
    def run(tree: Tree) -> None:
        *parents, last = path.split(".")
        node = tree
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return run


def second_router(**changes: Any) -> Callable[[Tree], None]:
    """Append a third, otherwise valid, mobile router with ``changes``."""
    def run(tree: Tree) -> None:
        router = {"name": "mr3", "home_address": "2001:db8:ffff::300",
                  "prefixes": ["2001:db8:3000::/48"], "spi": 0x300, "key": "ab" * 16,
                  "gre_key": 3003}
        router.update(changes)
        tree["mobile_routers"].append(router)
    return run


#: (id, change to the full tree, key path named in the problem, words in the problem)
MISTAKES: List[Any] = [
    ("liveness-port-too-big", put("home_agent.liveness_port", 70000),
     "home_agent.liveness_port", ["70000", "0..65535"]),
    ("liveness-port-negative", put("home_agent.liveness_port", -1),
     "home_agent.liveness_port", ["0..65535"]),
    ("liveness-port-not-a-number", put("home_agent.liveness_port", "udp"),
     "home_agent.liveness_port", ["'udp'"]),
    ("liveness-port-boolean", put("home_agent.liveness_port", True),
     "home_agent.liveness_port", ["integer"]),
    ("missing-addresses", drop("home_agent.addresses"), "home_agent.addresses",
     ["missing", "required"]),
    ("missing-home-prefixes", drop("home_agent.home_prefixes"), "home_agent.home_prefixes",
     ["missing"]),
    ("missing-uplink-port", drop("datapath.uplink_port"), "datapath.uplink_port", ["missing"]),
    ("missing-tunnel-port", drop("datapath.tunnel_port"), "datapath.tunnel_port", ["missing"]),
    ("missing-router-name", drop("mobile_routers.0.name"), "mobile_routers[0].name",
     ["missing"]),
    ("missing-router-home-address", drop("mobile_routers.0.home_address"),
     "mobile_routers[0].home_address", ["missing"]),
    ("missing-spi", drop("mobile_routers.0.spi"), "mobile_routers[0].spi",
     ["missing", "SPI"]),
    ("missing-key", drop("mobile_routers.1.key"), "mobile_routers[1].key",
     ["missing", "key"]),
    ("null-value-is-missing", put("datapath.uplink_port", None), "datapath.uplink_port",
     ["missing"]),
    ("empty-addresses", put("home_agent.addresses", []), "home_agent.addresses",
     ["at least one"]),
    ("unknown-top-level-key", put("limit", {}), "limit",
     ["unknown key", "limits", "mobile_routers"]),
    ("unknown-home-agent-key", put("home_agent.home_prefix", []), "home_agent.home_prefix",
     ["unknown key", "home_prefixes"]),
    ("unknown-router-key", put("mobile_routers.0.prefix", []), "mobile_routers[0].prefix",
     ["unknown key", "prefixes"]),
    ("unknown-limits-key", put("limits.max_lifetme", 5), "limits.max_lifetme",
     ["unknown key", "max_lifetime"]),
    ("unknown-upstream-key", put("upstream.gateway", "x"), "upstream.gateway",
     ["unknown key", "next_hop"]),
    ("bad-ha-address", put("home_agent.addresses", ["2001:db8::zz"]), "home_agent.addresses",
     ["2001:db8::zz", "hex digits"]),
    ("ipv4-as-ha-address", put("home_agent.addresses", ["198.51.100.1"]),
     "home_agent.addresses", ["198.51.100.1"]),
    ("bad-ipv4-address", put("home_agent.ipv4_address", "198.51.100.300"),
     "home_agent.ipv4_address", ["198.51.100.300"]),
    ("bad-router-home-address", put("mobile_routers.0.home_address", "mr1.example.com"),
     "mobile_routers[0].home_address", ["mr1.example.com"]),
    ("bad-next-hop", put("upstream.next_hop", "2001:db8::1::2"), "upstream.next_hop",
     ["2001:db8::1::2"]),
    ("home-prefix-host-bits", put("home_agent.home_prefixes", ["2001:db8:ffff::1/64"]),
     "home_agent.home_prefixes", ["2001:db8:ffff::1/64", "host bits"]),
    ("router-prefix-host-bits", put("mobile_routers.0.prefixes", ["2001:db8:1000::1/48"]),
     "mobile_routers[0].prefixes", ["2001:db8:1000::1/48", "host bits"]),
    ("router-prefix-not-a-prefix", put("mobile_routers.0.prefixes", ["2001:db8:1000::/129"]),
     "mobile_routers[0].prefixes", ["2001:db8:1000::/129"]),
    ("spi-below-256", put("mobile_routers.0.spi", 255), "mobile_routers[0].spi",
     ["255", "256"]),
    ("spi-above-32-bits", put("mobile_routers.0.spi", 1 << 32), "mobile_routers[0].spi",
     ["256"]),
    ("spi-not-a-number", put("mobile_routers.0.spi", "many"), "mobile_routers[0].spi",
     ["many"]),
    ("spi-boolean", put("mobile_routers.0.spi", True), "mobile_routers[0].spi",
     ["integer"]),
    ("short-key", put("mobile_routers.0.key", "00" * 15), "mobile_routers[0].key",
     ["15 octets", "16"]),
    ("non-hex-key", put("mobile_routers.0.key", "zz" * 16), "mobile_routers[0].key",
     ["hexadecimal"]),
    ("odd-length-key", put("mobile_routers.0.key", "0" * 33), "mobile_routers[0].key",
     ["hexadecimal"]),
    ("key-and-key-file", put("mobile_routers.0.key_file", "mr1.key"), "mobile_routers[0]",
     ["key_file", "not both"]),
    ("missing-key-file", lambda t: (t["mobile_routers"][1].pop("key"),
                                    t["mobile_routers"][1].update(key_file="absent.key")),
     "mobile_routers[1].key_file", ["absent.key", "No such file"]),
    ("unknown-policy", put("mobile_routers.0.policy", "round-robin"),
     "mobile_routers[0].policy", ["round-robin", "weighted", "priority"]),
    ("gre-key-zero", put("mobile_routers.0.gre_key", 0), "mobile_routers[0].gre_key",
     ["1.."]),
    ("empty-nai", put("mobile_routers.0.nai", ""), "mobile_routers[0].nai", ["non-empty"]),
    ("duplicate-name", second_router(name="mr1"), "mobile_routers[2].name",
     ["mr1", "already used by mobile_routers[0] (mr1)"]),
    ("duplicate-home-address", second_router(home_address="2001:db8:ffff::100"),
     "mobile_routers[2].home_address", ["2001:db8:ffff::100", "already used by",
                                        "(mr1)"]),
    ("duplicate-spi", second_router(spi=256), "mobile_routers[2].spi",
     ["256", "already used by mobile_routers[0] (mr1)"]),
    ("duplicate-gre-key", second_router(gre_key=1001), "mobile_routers[2].gre_key",
     ["1001", "already used by mobile_routers[0] (mr1)"]),
    ("overlapping-prefixes", second_router(prefixes=["2001:db8:1000:1::/64"]),
     "mobile_routers[2].prefixes", ["2001:db8:1000::/48", "overlaps",
                                    "2001:db8:1000:1::/64", "mr1"]),
    ("overlapping-wider-prefix", second_router(prefixes=["2001:db8:1000::/40"]),
     "mobile_routers[2].prefixes", ["2001:db8:1000::/40", "overlaps",
                                    "2001:db8:1000::/48", "mr1"]),
    ("home-address-outside-home-prefixes",
     put("mobile_routers.0.home_address", "2001:db8:eeee::100"),
     "mobile_routers[0].home_address", ["2001:db8:eeee::100", "home_prefixes"]),
    ("uplink-equals-tunnel-port", put("datapath.tunnel_port", "uplink"), "datapath",
     ["uplink_port", "tunnel_port", "differ"]),
    ("no-upstream", drop("upstream"), "upstream", ["next_hop", "next_hop_mac"]),
    ("empty-upstream", put("upstream", {}), "upstream", ["next_hop"]),
    ("bad-mac-short", put("upstream.next_hop_mac", "02:00:00:00:00"), "upstream.next_hop_mac",
     ["02:00:00:00:00", "MAC"]),
    ("bad-mac-digits", put("upstream.next_hop_mac", "02:00:00:00:00:zz"),
     "upstream.next_hop_mac", ["MAC"]),
    ("max-lifetime-too-small", put("limits.max_lifetime", 3), "limits.max_lifetime",
     ["4..262140"]),
    ("max-lifetime-too-large", put("limits.max_lifetime", 0xFFFF * 4 + 1),
     "limits.max_lifetime", ["4..262140"]),
    ("no-care-of-addresses", put("limits.max_care_of_addresses", 0),
     "limits.max_care_of_addresses", ["1..64"]),
    ("too-many-care-of-addresses", put("limits.max_care_of_addresses", 65),
     "limits.max_care_of_addresses", ["1..64"]),
    ("zero-packet-in-rate", put("limits.packet_in_rate", 0), "limits.packet_in_rate",
     ["1.."]),
    ("negative-burst", put("limits.packet_in_burst", -1), "limits.packet_in_burst", ["0.."]),
    ("zero-replay-window", put("limits.replay_window", 0), "limits.replay_window",
     ["positive"]),
    ("negative-expiry-interval", put("limits.expiry_interval", -1.0),
     "limits.expiry_interval", ["positive"]),
    ("text-replay-window", put("limits.replay_window", "soon"), "limits.replay_window",
     ["soon"]),
    ("listen-port-out-of-range", put("openflow.listen_port", 70000), "openflow.listen_port",
     ["1..65535"]),
    ("dpid-negative", put("datapath.dpid", -1), "datapath.dpid", ["0.."]),
    ("routers-not-a-list", put("mobile_routers", {"name": "mr1"}), "mobile_routers",
     ["must be a list"]),
]
#: Mistakes that also leave the keys inside them missing (reported as well).
WITH_FOLLOW_ONS: List[Any] = [
    ("router-not-a-mapping", put("mobile_routers.1", "mn2"), "mobile_routers[1]",
     ["must be a mapping", "str"]),
    ("section-not-a-mapping", put("datapath", ["uplink", "gre0"]), "datapath",
     ["must be a mapping", "list"]),
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


@pytest.mark.parametrize("change,path,words", [m[1:] for m in WITH_FOLLOW_ONS],
                         ids=[m[0] for m in WITH_FOLLOW_ONS])
def test_mistakes_with_follow_on_problems(change: Callable[[Tree], None], path: str,
                                          words: List[str]) -> None:
    tree = full_tree()
    change(tree)
    problems = problems_of(tree)
    problem = the_problem(problems, path)
    for word in words:
        assert word in problem, (word, problem)
    assert all(p.startswith(f"{SOURCE}: {path}") for p in problems), problems


def test_missing_sections_report_every_required_key() -> None:
    problems = problems_of({})
    for path in ("home_agent.addresses", "home_agent.home_prefixes", "datapath.uplink_port",
                 "datapath.tunnel_port"):
        assert "missing" in the_problem(problems, path)
    assert "next_hop" in the_problem(problems, "upstream")


@pytest.mark.parametrize("tree", [None, [], "home_agent"], ids=["empty", "list", "text"])
def test_top_level_must_be_a_mapping(tree: Any) -> None:
    problems = problems_of(tree)
    assert "must be a mapping" in the_problem(problems, "(top level)")


def test_several_mistakes_are_reported_together() -> None:
    tree = full_tree()
    tree["mobile_routers"][0]["spi"] = 12
    tree["mobile_routers"][1]["key"] = "beef"
    tree["upstream"]["next_hop_mac"] = "nope"
    tree["limits"]["colour"] = "blue"
    tree["datapath"]["tunnel_port"] = "uplink"
    problems = problems_of(tree)
    assert len(problems) == 5, problems
    the_problem(problems, "mobile_routers[0].spi")
    the_problem(problems, "mobile_routers[1].key")
    the_problem(problems, "upstream.next_hop_mac")
    the_problem(problems, "limits.colour")
    the_problem(problems, "datapath")


def test_a_router_with_errors_does_not_hide_the_others() -> None:
    tree = full_tree()
    del tree["mobile_routers"][0]["key"]
    tree["mobile_routers"].append({"name": "mr3", "home_address": "2001:db8:ffff::300",
                                   "spi": 0x200, "key": "cd" * 16})
    problems = problems_of(tree)
    the_problem(problems, "mobile_routers[0].key")
    assert "already used by mobile_routers[1] (mn2)" in the_problem(problems,
                                                                    "mobile_routers[2].spi")


# -- key files -------------------------------------------------------------------------------
def key_file_tree(name: str) -> Tree:
    tree = full_tree()
    del tree["mobile_routers"][1]["key"]
    tree["mobile_routers"][1]["key_file"] = name
    return tree


def test_key_file_is_read_relative_to_the_config_directory(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    (tmp_path / "keys").mkdir()
    (tmp_path / "keys" / "mn2.key").write_text(KEY2.hex() + "\n", encoding="ascii")
    config = parse_config(key_file_tree("keys/mn2.key"), SOURCE, str(tmp_path))
    assert config.mobile_routers[1].key == KEY2
    # load_config uses the file's own directory, whatever the working directory is.
    import yaml
    path = tmp_path / "ha.yaml"
    path.write_text(yaml.safe_dump(key_file_tree("keys/mn2.key")), encoding="utf-8")
    monkeypatch.chdir(tmp_path / "keys")
    assert load_config(str(path)).mobile_routers[1].key == KEY2


def test_key_file_with_bad_content(tmp_path: Path) -> None:
    (tmp_path / "mn2.key").write_text("not a key", encoding="ascii")
    problem = the_problem(problems_of(key_file_tree("mn2.key"), base_dir=str(tmp_path)),
                          "mobile_routers[1].key_file")
    assert "mn2.key" in problem and "hexadecimal" in problem


def test_missing_key_file_names_the_path_it_tried(tmp_path: Path) -> None:
    problem = the_problem(problems_of(key_file_tree("mn2.key"), base_dir=str(tmp_path)),
                          "mobile_routers[1].key_file")
    assert str(tmp_path / "mn2.key") in problem


# -- load_config -------------------------------------------------------------------------------
def test_load_config_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: ") and "cannot read" in problem
    assert "No such file" in problem


@pytest.mark.parametrize("text", ["home_agent: [unclosed\n", "a: b: c\n", "\tkey: 1\n"],
                         ids=["unclosed-list", "nested-colon", "tab"])
def test_load_config_of_invalid_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "ha.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: ") and "not valid YAML" in problem


def test_load_config_problems_name_the_file(tmp_path: Path) -> None:
    import yaml
    tree = full_tree()
    tree["mobile_routers"][0]["spi"] = 1
    path = tmp_path / "ha.yaml"
    path.write_text(yaml.safe_dump(tree), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{path}: mobile_routers[0].spi: ")


def test_load_config_of_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "ha.yaml"
    path.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(str(path))
    assert any("must be a mapping" in p for p in caught.value.problems)


def test_load_config_of_a_valid_file(tmp_path: Path) -> None:
    import yaml
    path = tmp_path / "ha.yaml"
    path.write_text(yaml.safe_dump(full_tree()), encoding="utf-8")
    config = load_config(str(path))
    assert config == parse_config(full_tree(), str(path), str(tmp_path))
    assert config.source == str(path)


# -- disagreements ---------------------------------------------------------------------------
def yaml_config(tmp_path: Path, router_lines: str, limits: str = "") -> Path:
    """A YAML file as an operator would write it (unquoted values stay YAML scalars)."""
    path = tmp_path / "ha.yaml"
    path.write_text(
        "home_agent: {addresses: ['2001:db8:ffff::1'], home_prefixes: ['2001:db8:ffff::/64']}\n"
        "datapath: {uplink_port: uplink, tunnel_port: gre0}\n"
        "upstream: {next_hop: '2001:db8:fffd::1'}\n"
        + (f"limits:\n  {limits}\n" if limits else "")
        + "mobile_routers:\n  - name: mr1\n    home_address: '2001:db8:ffff::100'\n"
        "    spi: 256\n" + "".join(f"    {line}\n" for line in router_lines.splitlines()),
        encoding="utf-8")
    return path


def test_quoted_0x_key_in_yaml(tmp_path: Path) -> None:
    path = yaml_config(tmp_path, f"key: '0x{KEY1.hex()}'")
    assert load_config(str(path)).mobile_routers[0].key == KEY1


def test_unquoted_0x_key_is_the_key_or_an_error(tmp_path: Path) -> None:
    path = yaml_config(tmp_path, f"key: 0x{KEY1.hex()}")
    try:
        config = load_config(str(path))
    except ConfigError:
        return  # rejected with a message: fine
    assert config.mobile_routers[0].key == KEY1


def test_mobile_router_must_be_a_boolean(tmp_path: Path) -> None:
    path = yaml_config(tmp_path, f"key: '{KEY1.hex()}'\nmobile_router: 'false'")
    try:
        config = load_config(str(path))
    except ConfigError as error:
        assert "mobile_routers[0].mobile_router" in str(error)
        return
    assert config.mobile_routers[0].mobile_router is False


def test_replay_window_nan_is_rejected(tmp_path: Path) -> None:
    path = yaml_config(tmp_path, f"key: '{KEY1.hex()}'", limits="replay_window: .nan")
    with pytest.raises(ConfigError):
        load_config(str(path))
