"""`kubectl tenantry`: a reseller's (or a platform admin's) view of its business, with kubectl's identity.

Installed with the package as the console script `kubectl-tenantry` (krew naming: kubectl finds it on
PATH and runs `kubectl tenantry ...`). It talks to the API server with the user's own kubeconfig
(`--kubeconfig`, `$KUBECONFIG`, `~/.kube/config`; `--context`), so it can do exactly what the user may:
a reseller's admins need only the `tenantry-reseller` role the platform binds for them. Impersonation
works as in kubectl: `--as`/`--as-group`, or `as`/`as-groups` in the kubeconfig's user.

    kubectl tenantry licenses                 granted, bought, used and available licences; the orders
    kubectl tenantry buy N                    order N licences, wait for the decision, show price and result
    kubectl tenantry tenants                  phase, plan, hosts, certificate expiry, month-to-date cost
    kubectl tenantry usage [TENANT]           month-to-date retail and wholesale per tenant
    kubectl tenantry bill [--day D | --month M]   daily wholesale bills by resource type (from the day after)

The reseller is the one whose control namespace (`reseller-<name>`) is `-n/--namespace`, else
`--reseller`, else the namespace of the current context. `-o json|yaml` prints the data instead of a
table. Usage and bills are the ConfigMaps the region meters write in the control namespace
(tenantry.metering.ledger); amounts are summed exactly and rounded to cents only when printed, the
same rule as `tenantry bill`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any, NoReturn

import urllib3
import yaml

GROUP, VERSION = "tenantry.dev", "v1alpha1"
ROLE_HINT = "ask your platform admin for the tenantry-reseller role"
# ConfigMaps the meters write in a reseller's control namespace (tenantry.metering.ledger).
BILLING_LABEL = "tenantry.dev/billing"
USAGE_KEY, BILL_KEY = "usage.json", "bill.json"


class PluginError(Exception):
    """Something the user can act on; printed as `error: ...`, exit status 1."""


# -- money, the same rule as `tenantry bill` ----------------------------------------------------------

CENT = Decimal("0.01")


def cents(value: Decimal) -> str:
    from tenantry.metering.pricing import money_text, statement_total

    return money_text(statement_total([value]))


def add_amounts(into: dict[str, Decimal], amounts: Mapping[str, str]) -> None:
    for currency, amount in amounts.items():
        into[currency] = into.get(currency, Decimal(0)) + Decimal(amount)


def show_amounts(amounts: Mapping[str, Decimal]) -> str:
    return ", ".join(f"{cents(amount)} {currency}" for currency, amount in sorted(amounts.items())) or "-"


# -- talking to the API server -------------------------------------------------------------------------


class _Impersonating:
    """Adds Impersonate-User and one Impersonate-Group line per group to every request of the client
    (the API server wants one header line per group, which a plain header dict cannot send)."""

    def __init__(self, inner: Any, user: str, groups: Sequence[str]):
        self._inner, self._user, self._groups = inner, user, tuple(groups)

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        headers = urllib3.HTTPHeaderDict(kwargs.pop("headers", None) or {})
        headers["Impersonate-User"] = self._user
        for group in self._groups:
            headers.add("Impersonate-Group", group)
        return self._inner.request(method, url, headers=headers, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _kubeconfig_files(path: str | None) -> list[Path]:
    if path:
        return [Path(path)]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p) for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _kubeconfig_user(files: Sequence[Path], context_name: str | None) -> tuple[str | None, dict[str, Any]]:
    """(the context's namespace, its user entry), read from the kubeconfig files as kubectl merges them."""
    contexts: dict[str, Any] = {}
    users: dict[str, Any] = {}
    current = None
    for path in files:
        if not path.exists():
            continue
        data = yaml.safe_load(path.read_text()) or {}
        current = current or data.get("current-context")
        for entry in data.get("contexts") or []:
            contexts.setdefault(entry.get("name"), entry.get("context") or {})
        for entry in data.get("users") or []:
            users.setdefault(entry.get("name"), entry.get("user") or {})
    context: dict[str, Any] = contexts.get(str(context_name or current)) or {}
    return context.get("namespace"), users.get(str(context.get("user"))) or {}


class Session:
    """The user's API client, and the reseller the command is about."""

    def __init__(self, args: argparse.Namespace):
        from kubernetes import client, config

        files = _kubeconfig_files(args.kubeconfig)
        configuration = client.Configuration()
        try:
            config.load_kube_config(config_file=args.kubeconfig, context=args.context,
                                    client_configuration=configuration)
        except Exception as error:  # the library raises several kinds; all mean "no usable kubeconfig"
            raise PluginError(f"cannot load the kubeconfig ({', '.join(map(str, files))}): {error}") from error
        context_namespace, user = _kubeconfig_user(files, args.context)
        self.api = client.ApiClient(configuration)
        as_user = args.as_user or user.get("as")
        as_groups = args.as_group or user.get("as-groups") or []
        if as_user:
            self.api.rest_client.pool_manager = _Impersonating(  # type: ignore[assignment]
                self.api.rest_client.pool_manager, as_user, as_groups)
        self.server = configuration.host
        self.custom = client.CustomObjectsApi(self.api)
        self.core = client.CoreV1Api(self.api)
        self.reseller, self.namespace = self._reseller(args, context_namespace)

    @staticmethod
    def _reseller(args: argparse.Namespace, context_namespace: str | None) -> tuple[str, str]:
        if args.namespace:
            if not args.namespace.startswith("reseller-"):
                raise PluginError(f"namespace {args.namespace} is not a reseller's control namespace "
                                  "(reseller-<name>); use -n reseller-<name> or --reseller <name>")
            return args.namespace.removeprefix("reseller-"), args.namespace
        if args.reseller:
            return args.reseller, f"reseller-{args.reseller}"
        if context_namespace and context_namespace.startswith("reseller-"):
            return context_namespace.removeprefix("reseller-"), context_namespace
        raise PluginError("which reseller? pass --reseller <name> or -n reseller-<name>, or make it your "
                          "context's namespace: kubectl config set-context --current --namespace reseller-<name>")

    def call(self, verb: str, what: str, fn: Callable[[], Any], *, namespaced: bool = True) -> Any:
        """Run one API call; turn refusals into sentences that say what to do."""
        from kubernetes.client import ApiException

        try:
            return fn()
        except ApiException as error:
            where = f" in {self.namespace}" if namespaced else ""
            if error.status == 403:
                raise PluginError(f"you may not {verb} {what}{where}: {ROLE_HINT}") from error
            if error.status == 401:
                raise PluginError(f"the cluster at {self.server} does not know who you are (401): log in again "
                                  "or check your kubeconfig's credentials") from error
            if error.status == 404 and what.startswith("reseller "):
                raise PluginError(f"{what} does not exist") from error
            if error.status == 404 and what.startswith(("licenseorders", "licence orders")):
                raise PluginError("this cluster has no LicenseOrder kind: its Tenantry is older than this plugin; "
                                  "ask your platform admin to upgrade Tenantry's CRDs") from error
            if error.status == 404:
                raise PluginError(f"{what}{where} not found") from error
            reason = _api_message(error)
            raise PluginError(f"could not {verb} {what}{where}: {reason}") from error
        except (urllib3.exceptions.HTTPError, OSError) as error:
            raise PluginError(f"cannot reach the cluster at {self.server}: {error}") from error

    # -- reads and writes ------------------------------------------------------------------------

    def get_reseller(self) -> dict[str, Any]:
        return dict(self.call("get", f"reseller {self.reseller}", lambda: self.custom.get_cluster_custom_object(
            GROUP, VERSION, "resellers", self.reseller), namespaced=False))

    def list_kind(self, plural: str, what: str) -> list[dict[str, Any]]:
        result = self.call("list", what, lambda: self.custom.list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural))
        return list(result.get("items") or [])

    def get_order(self, name: str) -> dict[str, Any]:
        return dict(self.call("get", f"licenseorder {name}", lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "licenseorders", name)))

    def create_order(self, quantity: int) -> dict[str, Any]:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "LicenseOrder",
                "metadata": {"generateName": "order-"}, "spec": {"quantity": quantity}}
        return dict(self.call("create", "licenseorders", lambda: self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "licenseorders", body)))

    def billing_configmaps(self, kind: str) -> list[Any]:
        result = self.call("list", "configmaps", lambda: self.core.list_namespaced_config_map(
            self.namespace, label_selector=f"{BILLING_LABEL}={kind}"))
        return list(result.items or [])


def _api_message(error: Any) -> str:
    try:
        return str(json.loads(error.body).get("message")) or str(error.reason)
    except (TypeError, ValueError, AttributeError):
        return str(error.reason)


# -- output ------------------------------------------------------------------------------------------


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """kubectl's plain table: upper-case headers, columns three spaces apart."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def emit(args: argparse.Namespace, data: Any, render: Callable[[], str]) -> None:
    if args.output == "json":
        print(json.dumps(data, indent=2, sort_keys=False, default=str))
    elif args.output == "yaml":
        print(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=False), end="")
    else:
        print(render())


# -- licenses and buy ------------------------------------------------------------------------------


def _order_row(order: Mapping[str, Any]) -> dict[str, Any]:
    status = order.get("status") or {}
    price = status.get("price") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})
    return {"name": order["metadata"]["name"], "quantity": (order.get("spec") or {}).get("quantity"),
            "phase": status.get("phase") or "Pending", "tier": price.get("tier"), "currency": price.get("currency"),
            "unitPrice": price.get("unitPrice"), "amount": price.get("amount"),
            "fulfilledAt": status.get("fulfilledAt"), "refundedAt": status.get("refundedAt"),
            "reason": ready.get("reason"), "message": ready.get("message"),
            "created": order["metadata"].get("creationTimestamp")}


def cmd_licenses(session: Session, args: argparse.Namespace) -> int:
    reseller = session.get_reseller()
    spec, licenses = reseller.get("spec") or {}, (reseller.get("status") or {}).get("licenses") or {}
    orders = sorted((_order_row(o) for o in session.list_kind("licenseorders", "licenseorders")),
                    key=lambda row: row["created"] or "")
    limit, month = licenses.get("selfServiceLimit"), licenses.get("purchasedThisMonth")
    data = {"reseller": session.reseller, "active": spec.get("active", True), "granted": spec.get("licenses", 0),
            "purchased": licenses.get("purchased", 0), "total": licenses.get("total"), "used": licenses.get("used"),
            "available": licenses.get("available"), "purchasedThisMonth": month, "selfServiceLimit": limit,
            "mayBuyThisMonth": max(limit - month, 0) if isinstance(limit, int) and isinstance(month, int) else None,
            "orders": orders}

    def render() -> str:
        text = table(["RESELLER", "GRANTED", "PURCHASED", "TOTAL", "USED", "AVAILABLE", "BOUGHT THIS MONTH",
                      "MONTHLY LIMIT"],
                     [[session.reseller, data["granted"], data["purchased"], data["total"], data["used"],
                       data["available"], month, limit]])
        if data["mayBuyThisMonth"] is not None:
            text += f"\nYou may buy {data['mayBuyThisMonth']} more licences this month (kubectl tenantry buy N)."
        if not data["active"]:
            text += "\nThe reseller is inactive: it cannot buy licences or get new tenants."
        if orders:
            text += "\n\n" + table(["ORDER", "QUANTITY", "TIER", "UNIT PRICE", "AMOUNT", "PHASE", "DATE"],
                                   [[o["name"], o["quantity"], o["tier"], o["unitPrice"],
                                     f"{o['amount']} {o['currency']}" if o["amount"] else "", o["phase"],
                                     o["fulfilledAt"] or o["created"]] for o in orders])
        return text

    emit(args, data, render)
    return 0


def cmd_buy(session: Session, args: argparse.Namespace) -> int:
    if args.quantity < 1:
        raise PluginError("buy at least 1 licence")
    created = session.create_order(args.quantity)
    name = created["metadata"]["name"]
    deadline = time.monotonic() + args.timeout
    order = created
    while ((order.get("status") or {}).get("phase") not in ("Fulfilled", "Rejected")
           and time.monotonic() < deadline):
        time.sleep(0.25)
        order = session.get_order(name)
    row = _order_row(order)
    decided = row["phase"] in ("Fulfilled", "Rejected")

    def render() -> str:
        if not decided:
            return (f"Order {name} for {args.quantity} licences was placed but not decided within {args.timeout:.0f}s; "
                    f"see `kubectl -n {session.namespace} get licenseorder {name}` (is the operator running?).")
        lines = [f"Order {name}: {row['quantity']} licences, tier {row['tier']}, {row['unitPrice']} "
                 f"{row['currency']} each = {row['amount']} {row['currency']}",
                 f"Result: {row['phase']}" + (f" ({row['reason']})" if row["phase"] == "Rejected" else ""),
                 f"{row['message']}"]
        return "\n".join(lines)

    emit(args, row, render)
    if not decided:
        return 2
    return 0 if row["phase"] == "Fulfilled" else 1


# -- tenants and usage -------------------------------------------------------------------------------


def month_to_date(session: Session, *, required: bool) -> tuple[dict[str, dict[str, Any]], str | None]:
    """Month-to-date amounts per tenant name, summed over the region meters' usage ConfigMaps, and the
    moment they run to (the earliest `through` of them). Without `required`, a refusal leaves them out."""
    try:
        maps = session.billing_configmaps("usage")
    except PluginError as error:
        if required:
            raise
        print(f"warning: {error}; month-to-date costs are not shown", file=sys.stderr)
        return {}, None
    month = datetime.datetime.now(datetime.UTC).strftime("%Y-%m")
    tenants: dict[str, dict[str, Any]] = {}
    through: list[str] = []
    for cm in maps:
        try:
            usage = json.loads((cm.data or {}).get(USAGE_KEY) or "{}")
        except ValueError:
            continue
        if usage.get("month") != month:
            continue  # last month's, not rewritten yet: nothing closed this month
        through.append(usage.get("through") or "")
        for entry in (usage.get("tenants") or {}).values():
            row = tenants.setdefault(entry["tenant"], {"tenant": entry["tenant"], "plan": entry.get("plan"),
                                                       "retail": {}, "wholesale": {}})
            add_amounts(row["retail"], entry.get("retail") or {})
            add_amounts(row["wholesale"], entry.get("wholesale") or {})
    return tenants, (min(through) if through else None)


def _amounts_json(amounts: Mapping[str, Decimal]) -> dict[str, dict[str, str]]:
    return {currency: {"exact": format(amount, "f"), "rounded": cents(amount)}
            for currency, amount in sorted(amounts.items())}


def _certificate_expiry(status: Mapping[str, Any]) -> str | None:
    dates = [c.get("notAfter") for c in status.get("certificates") or () if c.get("notAfter")]
    return min(dates) if dates else None


def cmd_tenants(session: Session, args: argparse.Namespace) -> int:
    tenants = sorted(session.list_kind("tenants", "tenants"), key=lambda t: t["metadata"]["name"])
    usage, through = month_to_date(session, required=False)
    rows = []
    for tenant in tenants:
        name, spec, status = tenant["metadata"]["name"], tenant.get("spec") or {}, tenant.get("status") or {}
        cost = usage.get(name) or {"retail": {}, "wholesale": {}}
        ready: dict[str, Any] = next((c for c in status.get("conditions") or () if c.get("type") == "Ready"), {})
        rows.append({"name": name, "phase": status.get("phase") or "Pending", "plan": spec.get("plan"),
                     "region": spec.get("region"), "hosts": status.get("hosts") or [],
                     "certificateExpiry": _certificate_expiry(status), "ready": ready.get("status"),
                     "reason": ready.get("reason"),
                     "monthToDate": {"retail": _amounts_json(cost["retail"]),
                                     "wholesale": _amounts_json(cost["wholesale"]), "through": through}})

    def render() -> str:
        text = table(["NAME", "PHASE", "PLAN", "REGION", "HOSTS", "CERTIFICATE EXPIRY", "RETAIL MTD",
                      "WHOLESALE MTD"],
                     [[r["name"], r["phase"] + ("" if r["ready"] == "True" else f" ({r['reason']})"), r["plan"],
                       r["region"], ",".join(r["hosts"]) or "-", r["certificateExpiry"] or "-",
                       show_amounts(usage.get(r["name"], {}).get("retail", {})),
                       show_amounts(usage.get(r["name"], {}).get("wholesale", {}))] for r in rows])
        if through:
            text += f"\nMonth-to-date costs run to {through} (the last closed billing window)."
        return text

    emit(args, {"reseller": session.reseller, "tenants": rows}, render)
    return 0


def cmd_usage(session: Session, args: argparse.Namespace) -> int:
    usage, through = month_to_date(session, required=True)
    if args.tenant:
        if args.tenant not in usage:
            known = ", ".join(sorted(usage)) or "none yet"
            raise PluginError(f"no usage this month for tenant {args.tenant} in {session.namespace} "
                              f"(tenants with usage: {known})")
        usage = {args.tenant: usage[args.tenant]}
    totals: dict[str, dict[str, Decimal]] = {"retail": {}, "wholesale": {}}
    rows = []
    for name in sorted(usage):
        entry = usage[name]
        for side in ("retail", "wholesale"):
            for currency, amount in entry[side].items():
                totals[side][currency] = totals[side].get(currency, Decimal(0)) + amount
        rows.append({"tenant": name, "plan": entry["plan"], "retail": _amounts_json(entry["retail"]),
                     "wholesale": _amounts_json(entry["wholesale"])})
    data = {"reseller": session.reseller, "month": datetime.datetime.now(datetime.UTC).strftime("%Y-%m"),
            "through": through, "tenants": rows,
            "total": {side: _amounts_json(amounts) for side, amounts in totals.items()}}

    def render() -> str:
        if not rows:
            return f"No usage billed this month in {session.namespace} yet (windows close every hour by default)."
        body = [[name, usage[name]["plan"], show_amounts(usage[name]["retail"]),
                 show_amounts(usage[name]["wholesale"])] for name in sorted(usage)]
        if not args.tenant:
            body.append(["TOTAL", "", show_amounts(totals["retail"]), show_amounts(totals["wholesale"])])
        return (table(["TENANT", "PLAN", "RETAIL", "WHOLESALE"], body)
                + f"\nMonth to date ({data['month']}), through {through}: retail is what tenants owe you, "
                  "wholesale what you owe the platform.")

    emit(args, data, render)
    return 0


# -- bills --------------------------------------------------------------------------------------------


def _period(args: argparse.Namespace) -> tuple[datetime.date, datetime.date, str]:
    today = datetime.datetime.now(datetime.UTC).date()
    if args.day:
        try:
            day = datetime.date.fromisoformat(args.day)
        except ValueError as error:
            raise PluginError(f"--day {args.day!r} is not a date (YYYY-MM-DD)") from error
        return day, day + datetime.timedelta(days=1), day.isoformat()
    text = args.month or today.strftime("%Y-%m")
    try:
        start = datetime.date.fromisoformat(f"{text}-01")
    except ValueError as error:
        raise PluginError(f"--month {text!r} is not a month (YYYY-MM)") from error
    end = (start.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
    return start, end, text


def cmd_bill(session: Session, args: argparse.Namespace) -> int:
    start, end, label = _period(args)
    lines: dict[tuple[str, str, str, str], list[Decimal]] = {}
    days = set()
    for cm in session.billing_configmaps("bill"):
        try:
            bill = json.loads((cm.data or {}).get(BILL_KEY) or "{}")
            day = datetime.date.fromisoformat(bill["day"])
        except (ValueError, KeyError):
            continue
        if not start <= day < end:
            continue
        days.add(day)
        for line in bill.get("lines") or ():
            entry = lines.setdefault((day.isoformat(), line["meter"], line["unit"], line["currency"]),
                                     [Decimal(0), Decimal(0)])
            entry[0] += Decimal(line["quantity"])
            entry[1] += Decimal(line["amount"])
    order = {m: i for i, m in enumerate(("cpu", "memory", "storage", "license", "base"))}
    keys = sorted(lines, key=lambda k: (k[0], order.get(k[1], 99), k[3]))
    totals: dict[str, Decimal] = {}
    for key in keys:
        totals[key[3]] = totals.get(key[3], Decimal(0)) + lines[key][1]
    rows = [{"day": k[0], "meter": k[1], "unit": k[2], "quantity": format(lines[k][0].normalize(), "f"),
             "currency": k[3], "amount": format(lines[k][1], "f"), "rounded": cents(lines[k][1])} for k in keys]
    data = {"reseller": session.reseller, "period": label, "from": start.isoformat(), "to": end.isoformat(),
            "days": sorted(d.isoformat() for d in days), "lines": rows,
            "total": {c: {"exact": format(a, "f"), "rounded": cents(a)} for c, a in sorted(totals.items())}}

    def render() -> str:
        if not rows:
            return (f"No wholesale bill for {label} in {session.namespace} yet: a day's bill appears the day "
                    "after, once its last billing window has closed.")
        body = [[r["day"], r["meter"], r["unit"], r["quantity"], r["rounded"], r["currency"]] for r in rows]
        for currency, amount in sorted(totals.items()):
            body.append(["TOTAL", "", "", "", cents(amount), currency])
        return (table(["DAY", "RESOURCE", "UNIT", "QUANTITY", "AMOUNT", "CURRENCY"], body)
                + f"\nWholesale charges to reseller {session.reseller} for {label}, by day and resource type.")

    emit(args, data, render)
    return 0


# -- the command line -----------------------------------------------------------------------------------


def _common(suppress: bool) -> argparse.ArgumentParser:
    """The options every subcommand takes, before or after its name (after it, their defaults are
    suppressed so that they do not undo what was given before it)."""
    def default(value: Any) -> Any:
        return argparse.SUPPRESS if suppress else value

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-n", "--namespace", default=default(None),
                        help="the reseller's control namespace (reseller-<name>)")
    common.add_argument("--reseller", default=default(None), help="the reseller (instead of -n reseller-<name>)")
    common.add_argument("--kubeconfig", default=default(None),
                        help="kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
    common.add_argument("--context", default=default(None), help="kubeconfig context (default the current one)")
    common.add_argument("--as", dest="as_user", default=default(None),
                        help="act as this user (impersonation, as kubectl --as)")
    common.add_argument("--as-group", action="append", default=default([]), help="act in this group (repeatable)")
    common.add_argument("-o", "--output", choices=("table", "json", "yaml"), default=default("table"),
                        help="output format (default table)")
    return common


def parser() -> argparse.ArgumentParser:
    common = _common(suppress=True)
    top = argparse.ArgumentParser(prog="kubectl tenantry", parents=[_common(suppress=False)],
                                  description="A reseller's licences, tenants, usage and bills on a Tenantry "
                                              "platform, with your own kubectl identity.")
    commands = top.add_subparsers(dest="command", required=True)
    commands.add_parser("licenses", parents=[common], help="licences: granted, bought, used, available; orders")
    buy = commands.add_parser("buy", parents=[common], help="order N licences and show the price and result")
    buy.add_argument("quantity", type=int, help="how many licences")
    buy.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the decision (default 30)")
    commands.add_parser("tenants", parents=[common], help="tenants: phase, hosts, certificate expiry, cost")
    usage = commands.add_parser("usage", parents=[common], help="month-to-date retail and wholesale per tenant")
    usage.add_argument("tenant", nargs="?", help="one tenant (default all)")
    bill = commands.add_parser("bill", parents=[common], help="daily wholesale bills by resource type")
    period = bill.add_mutually_exclusive_group()
    period.add_argument("--day", help="one day, YYYY-MM-DD (UTC)")
    period.add_argument("--month", help="one month, YYYY-MM (default the current month)")
    return top


COMMANDS: dict[str, Callable[[Session, argparse.Namespace], int]] = {
    "licenses": cmd_licenses, "buy": cmd_buy, "tenants": cmd_tenants, "usage": cmd_usage, "bill": cmd_bill,
}


def _fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        session = Session(args)
        return COMMANDS[args.command](session, args)
    except PluginError as error:
        _fail(str(error))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
