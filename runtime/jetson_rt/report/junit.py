"""``junit.xml``: one test case per host check and per latency gate.

CI systems show it natively. Each host is a ``<testsuite>``; an unreachable
host or one whose results are missing is a single ``<error>`` test case, a
failed check or gate a ``<failure>``, an audit check that could not be decided
``<skipped>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from jetson_rt.report.evaluate import FleetReport, HostReport
from jetson_rt.report.model import AuditCheck

# Characters XML 1.0 does not allow, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _case(suite: ET.Element, classname: str, name: str) -> ET.Element:
    return ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})


def _audit_case(suite: ET.Element, classname: str, check: AuditCheck) -> None:
    case = _case(suite, classname, check.id)
    detail = "\n".join(
        f"{label}: {value}"
        for label, value in (
            ("title", check.title),
            ("observed", check.observed),
            ("expected", check.expected),
            ("hint", check.hint),
        )
        if value
    )
    if check.status == "fail":
        message = f"{check.title}: observed {check.observed}, expected {check.expected}"
        ET.SubElement(case, "failure", {"message": message, "type": "audit"}).text = detail
    elif check.status == "unknown":
        ET.SubElement(case, "skipped", {"message": f"{check.title}: could not be checked"})
    elif check.status == "warn":
        ET.SubElement(case, "system-out").text = f"WARNING\n{detail}"


def _host_suite(host: HostReport) -> ET.Element:
    record = host.record
    suite = ET.Element("testsuite", {"name": f"jetson_rt.validation.{record.name}"})
    base = f"jetson_rt.validation.{record.name}"
    properties = ET.SubElement(suite, "properties")
    ET.SubElement(properties, "property", {"name": "groups", "value": ",".join(record.groups)})
    ET.SubElement(properties, "property", {"name": "verdict", "value": host.verdict})
    ET.SubElement(properties, "property", {"name": "state", "value": record.state})

    if record.state != "ok":
        case = _case(suite, base, "results")
        message = "; ".join(record.problems) or record.state
        if host.verdict == "error" or record.state in ("unreachable", "missing", "failed"):
            ET.SubElement(case, "error", {"message": message, "type": record.state}).text = message
        else:
            # Only optional results were unreadable: the host is still judged.
            ET.SubElement(case, "system-out").text = f"WARNING\n{message}"

    for check in record.checks or ():
        _audit_case(suite, f"{base}.audit", check)

    if record.cyclictest is not None:
        for result in host.gate_results:
            case = _case(suite, f"{base}.latency", result.metric)
            if result.status == "fail":
                ET.SubElement(
                    case, "failure", {"message": f"{result.title}: {result.detail}", "type": "gate"}
                ).text = f"gate from group(s): {', '.join(host.gate.sources) or 'none'}"
            elif result.status == "unknown":
                ET.SubElement(
                    case, "error", {"message": f"{result.title}: {result.detail}", "type": "gate"}
                )
            else:
                ET.SubElement(case, "system-out").text = result.detail
    elif record.state == "ok":
        case = _case(suite, f"{base}.latency", "cyclictest")
        ET.SubElement(case, "error", {"message": "no cyclictest results", "type": "missing"})

    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
    suite.set("errors", str(sum(1 for c in cases if c.find("error") is not None)))
    suite.set("skipped", str(sum(1 for c in cases if c.find("skipped") is not None)))
    suite.set("time", "0")
    return suite


def build_junit(report: FleetReport) -> bytes:
    root = ET.Element("testsuites", {"name": f"jetson-rt validation {report.run.info.run_id}"})
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for host in report.hosts:
        suite = _host_suite(host)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
        root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", "0")
    ET.indent(root)
    text = ET.tostring(root, encoding="unicode")
    # ElementTree writes control characters (from a host's files) as they are, which
    # makes the whole file ill-formed XML; U+FFFD keeps it readable by CI.
    text = _NOT_XML.sub("\ufffd", text)
    return b"<?xml version='1.0' encoding='utf-8'?>\n" + text.encode("utf-8")
