"""Every rule the guard can report: a stable code with English and Simplified Chinese text.

A ``Violation`` says which rule broke and where (line/col/highlight, like sqlglot's
``ParseError.errors``); ``to_reason`` turns it into the ``Reason`` the CLI and gateway print.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from enclave.errors import Reason

# code -> (English, Chinese). Messages take ``str.format`` fields from the violation's ``params``.
MESSAGES: dict[str, tuple[str, str]] = {
    "QRY_PARSE": (
        "The SQL could not be parsed: {detail}",
        "无法解析该 SQL：{detail_zh}",
    ),
    "QRY_TOO_LARGE": (
        "The query is too large ({detail}); split it into smaller queries.",
        "查询过大（{detail}）；请拆分为较小的查询。",
    ),
    "QRY_MULTI_STATEMENT": (
        "Send exactly one statement; found {detail}.",
        "每次只能提交一条语句；实际有 {detail} 条。",
    ),
    "QRY_NOT_SELECT": (
        "Only SELECT queries are allowed, not {detail}.",
        "只允许 SELECT 查询，不允许 {detail}。",
    ),
    "QRY_SET_OPERATION": (
        "Not allowed: {detail}. Only UNION ALL of rows is (in a subquery or CTE, every part selecting "
        "the person key and bare columns); run anything else as separate queries.",
        "不允许：{detail}。只允许行数据的 UNION ALL"
        "（位于子查询或 CTE 中，且每个部分都选出人员标识和原始列）；其他情况请分别查询。",
    ),
    "QRY_UNKNOWN_TABLE": (
        "Unknown table {detail}: query only the project's views by their plain names ({views}).",
        "未知的表 {detail}：只能用名称直接查询本项目的视图（{views}）。",
    ),
    "QRY_TABLE_FUNCTION": (
        "Table functions such as {detail} are not allowed: query the project's views ({views}).",
        "不允许使用表函数（如 {detail}）：请查询本项目的视图（{views}）。",
    ),
    "QRY_UNKNOWN_COLUMN": (
        "Unknown column {detail}.",
        "未知的列 {detail}。",
    ),
    "QRY_RESERVED_NAME": (
        "The name {detail} is reserved for the guard; choose another name.",
        "名称 {detail} 为查询守卫保留；请换一个名称。",
    ),
    "QRY_CTE_SHADOWS_VIEW": (
        "The CTE name {detail} hides a view of the same name; choose another name.",
        "CTE 名称 {detail} 与视图同名；请换一个名称。",
    ),
    "QRY_FUNCTION_NOT_ALLOWED": (
        "The function {detail} is not on the guard's allowlist.",
        "函数 {detail} 不在查询守卫允许的列表中。",
    ),
    "QRY_SYNTAX_NOT_ALLOWED": (
        "This SQL construct is not allowed: {detail}.",
        "不允许使用此 SQL 结构：{detail}。",
    ),
    "QRY_WINDOW": (
        "Window functions, QUALIFY and WINDOW clauses are not allowed: they carry row values out.",
        "不允许使用窗口函数、QUALIFY 和 WINDOW 子句：它们会带出单行数据。",
    ),
    "QRY_PIVOT": (
        "PIVOT/UNPIVOT is not allowed; use GROUP BY with CASE expressions instead.",
        "不允许使用 PIVOT/UNPIVOT；请改用 GROUP BY 和 CASE 表达式。",
    ),
    "QRY_SAMPLE": (
        "Sampling (TABLESAMPLE / USING SAMPLE) is not allowed.",
        "不允许抽样（TABLESAMPLE / USING SAMPLE）。",
    ),
    "QRY_GROUPING_SETS": (
        "ROLLUP, CUBE and GROUPING SETS are not allowed; run one query per grouping.",
        "不允许使用 ROLLUP、CUBE 和 GROUPING SETS；请每种分组单独查询。",
    ),
    "QRY_RECURSIVE": (
        "Recursive CTEs are not allowed.",
        "不允许使用递归 CTE。",
    ),
    "QRY_SUBQUERY_LIMIT": (
        "{detail} is only allowed in the outermost query, where it applies after suppression.",
        "{detail} 只能用于最外层查询（在小单元格抑制之后生效）。",
    ),
    "QRY_LIMIT_FORM": (
        "LIMIT and OFFSET take a plain non-negative integer.",
        "LIMIT 和 OFFSET 只能使用非负整数常量。",
    ),
    "QRY_JOIN": (
        "Join not allowed: {detail}",
        "不允许此连接：{detail}",
    ),
    "QRY_NO_SOURCE": (
        "The query must read from at least one of the project's views.",
        "查询必须至少读取本项目的一个视图。",
    ),
    "QRY_NOT_AGGREGATE": (
        "The outermost query must aggregate: every output column must be an aggregate "
        "(count, sum, avg, ...) or a GROUP BY key. {detail}",
        "最外层查询必须是聚合查询：每个输出列都必须是聚合（count、sum、avg 等）或 GROUP BY 键。{detail_zh}",
    ),
    "QRY_DISTINCT": (
        "{detail}",
        "{detail_zh}",
    ),
    "QRY_PERSON_KEY_OUTPUT": (
        "The person key {detail} cannot be output, grouped by or ordered by in the outermost query.",
        "最外层查询不能输出、分组或排序人员标识 {detail}。",
    ),
    "QRY_PERSON_KEY_USE": (
        "The person key {detail} may only be used bare: in joins on another person key, "
        "count(DISTINCT ...), IN (SELECT <person key> ...), IS [NOT] NULL, or as a "
        "column/GROUP BY key of a subquery.",
        "人员标识 {detail} 只能直接使用：与另一人员标识连接、count(DISTINCT ...)、"
        "IN (SELECT <人员标识> ...)、IS [NOT] NULL，或作为子查询的列/GROUP BY 键。",
    ),
    "QRY_UNSAFE_AGGREGATE": (
        "The aggregate {detail} can reveal a single person's value or a membership bit; min, max, "
        "bool_or and any_value are allowed only inside a subquery grouped by the person key. Here use "
        "count, sum, avg, stddev, variance, corr, covar_*, regr_*, median or quantile_cont.",
        "聚合 {detail} 可能泄露单个人的取值或成员信息；min、max、bool_or 和 any_value 只能在按人员标识分组的"
        "子查询中使用。此处请使用 count、sum、avg、stddev、variance、corr、covar_*、regr_*、"
        "median 或 quantile_cont。",
    ),
    "QRY_AGGREGATE_ARGUMENT": (
        "The argument of {detail} must be a column; one transform of one column (round, floor, a "
        "bucket, cast, coalesce with a constant, a date part, a change of unit x * c or x / c); a sum "
        "or difference of columns of the same row (discharge_date - visit_date); or an indicator "
        "CASE WHEN <condition> THEN <constant> [ELSE 0] END. Powers, products and added constants are "
        "not allowed (use corr/covar_*/regr_* for two columns; do arithmetic outside the aggregate).",
        "{detail} 的参数只能是：列；对单列的一次变换（round、floor、分箱、cast、带常量的 coalesce、"
        "日期部分、单位换算 x * c 或 x / c）；同一行各列的和或差（discharge_date - visit_date）；"
        "或指示表达式 "
        "CASE WHEN <条件> THEN <常量> [ELSE 0] END。不允许乘方、乘积和加常量"
        "（两列之间请用 corr/covar_*/regr_*；算术请放在聚合之外）。",
    ),
    "QRY_NESTED_AGGREGATE": (
        "Aggregates cannot be nested inside aggregates ({detail}).",
        "聚合不能嵌套在聚合中（{detail}）。",
    ),
    "QRY_SUBQUERY": (
        "Subquery not allowed: {detail}",
        "不允许此子查询：{detail}",
    ),
    "QRY_CORRELATED_SUBQUERY": (
        "Correlated subqueries are not allowed; join on the person key or use "
        "<person key> IN (SELECT <person key> ...).",
        "不允许相关子查询；请按人员标识连接，或使用 <人员标识> IN (SELECT <人员标识> ...)。",
    ),
    "QRY_UNTRACEABLE": (
        "The guard cannot trace which persons are behind each group: {detail}",
        "查询守卫无法追踪每个分组背后的人员：{detail}",
    ),
    "QRY_TOO_COMPLEX": (
        "The query is too complex for the guard ({detail}); simplify it.",
        "查询对查询守卫而言过于复杂（{detail}）；请简化。",
    ),
}

# Codes whose advice is not about disclosure but about the shape of the statement: enforced even in
# the advisory ``rows`` mode because the enclave never runs anything but a SELECT on its views.
STRUCTURAL_CODES = frozenset(
    {
        "QRY_PARSE",
        "QRY_TOO_LARGE",
        "QRY_MULTI_STATEMENT",
        "QRY_NOT_SELECT",
        "QRY_UNKNOWN_TABLE",
        "QRY_TABLE_FUNCTION",
        "QRY_UNKNOWN_COLUMN",
        "QRY_RESERVED_NAME",
        "QRY_CTE_SHADOWS_VIEW",
        "QRY_RECURSIVE",
        "QRY_TOO_COMPLEX",
    }
)


class _SafeDict(dict):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Violation:
    """One broken rule, located in the SQL where possible."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    col: int | None = None
    highlight: str | None = None

    @property
    def message(self) -> str:
        return MESSAGES[self.code][0].format_map(_SafeDict(self.params)).strip()

    @property
    def message_zh(self) -> str:
        return MESSAGES[self.code][1].format_map(_SafeDict(self.params)).strip()

    def to_reason(self) -> Reason:
        details: dict[str, Any] = {}
        if self.line is not None:
            details["line"] = self.line
            details["col"] = self.col
        if self.highlight:
            details["highlight"] = self.highlight
        message, message_zh = self.message, self.message_zh
        if self.line is not None:
            message = f"{message} (line {self.line}, col {self.col})"
            message_zh = f"{message_zh}（第 {self.line} 行，第 {self.col} 列）"
        return Reason(self.code, message, message_zh, details=details)


def locate(node: exp.Expression | None) -> dict[str, Any]:
    """Line, column and highlighted SQL of a node, from the first token position sqlglot kept."""
    if node is None:
        return {}
    for candidate in node.walk():
        meta = candidate.meta if isinstance(candidate, exp.Expression) else None
        if meta and "line" in meta:
            return {"line": meta["line"], "col": meta["col"], "highlight": _highlight(node)}
    return {"highlight": _highlight(node)}


def _highlight(node: exp.Expression) -> str:
    try:
        text = node.sql(dialect="duckdb", comments=False)
    except Exception:
        return ""
    return text if len(text) <= 120 else text[:117] + "..."


def violation(code: str, node: exp.Expression | None = None, **params: Any) -> Violation:
    """Build a violation for ``node``; ``params`` fill the message templates."""
    if code not in MESSAGES:
        raise KeyError(f"unknown guard code {code}")
    return Violation(code=code, params=params, **locate(node))


MESSAGES["QRY_LAYERS"] = (
    "Not in the guard's query algebra: {detail}",
    "不符合查询守卫的查询代数：{detail}",
)
MESSAGES["QRY_FANOUT"] = (
    "The join can multiply rows too much ({detail}); aggregate per person first "
    "(GROUP BY the person key) or join fewer tables with several rows per person.",
    "该连接可能使行数膨胀过多（{detail}）；请先按人员标识汇总，或减少每人多行的表的连接。",
)
MESSAGES["QRY_QUANTILE"] = (
    "{detail} needs a constant fraction strictly between 0 and 1, e.g. quantile_cont(x, 0.25).",
    "{detail} 需要介于 0 和 1 之间的常量分位数，例如 quantile_cont(x, 0.25)。",
)
MESSAGES["QRY_DATE_GRANULARITY"] = (
    "Dates may be grouped or aggregated by month, quarter or year (date_trunc('month', d), year(d)), "
    "as an interval between two dates of the same row (discharge_date - visit_date), or in a "
    "condition; exact days would reveal the project's secret date shift ({detail}).",
    "日期只能按月、季度或年分组或聚合（date_trunc('month', d)、year(d)），或作为同一行两个日期之间的间隔"
    "（discharge_date - visit_date），或用于条件中；精确到日会泄露项目的日期偏移（{detail}）。",
)
MESSAGES["QRY_GUARD_ERROR"] = (
    "The guard could not analyse this query, so it is refused; simplify the query.",
    "查询守卫无法分析此查询，因此拒绝执行；请简化查询。",
)
MESSAGES["QRY_ADVISORY"] = (
    "Advisory (rows mode): {detail}",
    "提示（行级访问模式）：{detail}",
)

# code -> (English, Chinese): how to rewrite a refused query. The gateway sends it with each refusal
# (``guidance``), and the analyst's client shows it under the message.
HINTS: dict[str, tuple[str, str]] = {
    "QRY_PARSE": ("Check the SQL near the position shown.", "请检查所示位置附近的 SQL。"),
    "QRY_TOO_LARGE": ("Split the query into smaller ones.", "请将查询拆分为几个较小的查询。"),
    "QRY_MULTI_STATEMENT": ("Run one statement per call.", "每次调用只运行一条语句。"),
    "QRY_NOT_SELECT": ("Write a SELECT over the project's views.", "请对本项目的视图编写 SELECT 查询。"),
    "QRY_SET_OPERATION": (
        "Run the parts as separate queries, or UNION ALL rows inside a CTE.",
        "请分别运行各部分，或在 CTE 中对行使用 UNION ALL。",
    ),
    "QRY_UNKNOWN_TABLE": ("List the views with db.tables().", "可用 db.tables() 列出视图。"),
    "QRY_TABLE_FUNCTION": ("Query a view by its name instead.", "请改为按名称查询视图。"),
    "QRY_UNKNOWN_COLUMN": (
        "List a view's columns with db.describe(view).",
        "可用 db.describe(视图) 列出列。",
    ),
    "QRY_RESERVED_NAME": ("Rename the alias or CTE.", "请为别名或 CTE 换一个名称。"),
    "QRY_CTE_SHADOWS_VIEW": ("Rename the CTE.", "请为 CTE 换一个名称。"),
    "QRY_FUNCTION_NOT_ALLOWED": (
        "Use an allowlisted function, or do the computation on the result in pandas.",
        "请使用允许列表中的函数，或在 pandas 中对结果进行计算。",
    ),
    "QRY_SYNTAX_NOT_ALLOWED": (
        "Rewrite it with plain SELECT, WHERE, GROUP BY, HAVING and joins on the person key.",
        "请改用简单的 SELECT、WHERE、GROUP BY、HAVING 以及按人员标识的连接。",
    ),
    "QRY_WINDOW": (
        "Aggregate with GROUP BY; windows are allowed only over released counts in the outermost query.",
        "请用 GROUP BY 聚合；窗口函数只能在最外层查询中作用于已发布的聚合结果。",
    ),
    "QRY_PIVOT": ("Use GROUP BY with CASE expressions.", "请使用 GROUP BY 和 CASE 表达式。"),
    "QRY_SAMPLE": ("Query the whole view; filter with WHERE.", "请查询整个视图，并用 WHERE 过滤。"),
    "QRY_GROUPING_SETS": ("Run one query per grouping.", "请每种分组单独查询。"),
    "QRY_RECURSIVE": ("Rewrite without WITH RECURSIVE.", "请不用 WITH RECURSIVE 改写。"),
    "QRY_SUBQUERY_LIMIT": (
        "Move ORDER BY / LIMIT to the outermost query.",
        "请把 ORDER BY / LIMIT 移到最外层查询。",
    ),
    "QRY_LIMIT_FORM": ("Write LIMIT 10, not an expression.", "请写 LIMIT 10 这样的常量，而非表达式。"),
    "QRY_JOIN": ("Join views on their person keys.", "请按人员标识连接视图。"),
    "QRY_NO_SOURCE": ("Add FROM <view>.", "请添加 FROM <视图>。"),
    "QRY_NOT_AGGREGATE": (
        "Aggregate: e.g. SELECT sex, count(*) FROM patients GROUP BY sex.",
        "请聚合：例如 SELECT sex, count(*) FROM patients GROUP BY sex。",
    ),
    "QRY_DISTINCT": (
        "Use count(DISTINCT <column>) or GROUP BY instead of SELECT DISTINCT.",
        "请用 count(DISTINCT <列>) 或 GROUP BY 代替 SELECT DISTINCT。",
    ),
    "QRY_PERSON_KEY_OUTPUT": (
        "Count persons instead: count(DISTINCT <person key>).",
        "请改为统计人数：count(DISTINCT <人员标识>)。",
    ),
    "QRY_PERSON_KEY_USE": (
        "Use the person key bare: in a join, count(DISTINCT ...) or IN (SELECT ...).",
        "请直接使用人员标识：用于连接、count(DISTINCT ...) 或 IN (SELECT ...)。",
    ),
    "QRY_UNSAFE_AGGREGATE": (
        "Use count, sum, avg, median or quantile_cont; take min/max per person in a subquery "
        "grouped by the person key.",
        "请使用 count、sum、avg、median 或 quantile_cont；min/max 请在按人员标识分组的子查询中计算。",
    ),
    "QRY_AGGREGATE_ARGUMENT": (
        "Aggregate a column (or one transform of it) and do the arithmetic outside the aggregate.",
        "请对列（或其一次变换）聚合，算术放在聚合之外。",
    ),
    "QRY_NESTED_AGGREGATE": (
        "Aggregate per person in a CTE, then aggregate that.",
        "请先在 CTE 中按人汇总，再对其聚合。",
    ),
    "QRY_SUBQUERY": (
        "Use <person key> IN (SELECT <person key> ...) or a CTE.",
        "请使用 <人员标识> IN (SELECT <人员标识> ...) 或 CTE。",
    ),
    "QRY_CORRELATED_SUBQUERY": (
        "Join on the person key or use <person key> IN (SELECT ...).",
        "请按人员标识连接，或使用 <人员标识> IN (SELECT ...)。",
    ),
    "QRY_UNTRACEABLE": (
        "Keep the person key in every CTE and subquery the result is built from.",
        "请在构成结果的每个 CTE 和子查询中保留人员标识。",
    ),
    "QRY_TOO_COMPLEX": ("Split the query or use fewer CTEs.", "请拆分查询或减少 CTE。"),
    "QRY_LAYERS": (
        "Have one aggregation layer: per-person CTEs, then one GROUP BY.",
        "只保留一个聚合层：先按人的 CTE，再一次 GROUP BY。",
    ),
    "QRY_FANOUT": (
        "Aggregate per person (GROUP BY the person key) before the join.",
        "请在连接前按人员标识汇总（GROUP BY 人员标识）。",
    ),
    "QRY_QUANTILE": ("Pass a constant fraction, e.g. 0.25.", "请传入常量分位数，例如 0.25。"),
    "QRY_DATE_GRANULARITY": (
        "Group dates by date_trunc('month', d) or year(d).",
        "请按 date_trunc('month', d) 或 year(d) 对日期分组。",
    ),
    "QRY_GUARD_ERROR": ("Simplify the query.", "请简化查询。"),
    "QRY_ADVISORY": ("Nothing to rewrite: a notice only.", "无需改写：仅为提示。"),
}

GUARD_DOCS = "docs/guard.md"
# code -> the section of the guard docs that explains the rule (its heading's anchor).
DOC_SECTIONS: dict[str, str] = {
    **dict.fromkeys(MESSAGES, "rules-and-their-codes"),
    **dict.fromkeys(
        (
            "QRY_NOT_AGGREGATE",
            "QRY_LAYERS",
            "QRY_SUBQUERY",
            "QRY_CORRELATED_SUBQUERY",
            "QRY_SET_OPERATION",
            "QRY_PERSON_KEY_OUTPUT",
            "QRY_PERSON_KEY_USE",
            "QRY_UNTRACEABLE",
        ),
        "the-algebra-four-layers",
    ),
    "QRY_AGGREGATE_ARGUMENT": "aggregate-arguments",
    "QRY_UNSAFE_AGGREGATE": "aggregates-per-layer",
    "QRY_NESTED_AGGREGATE": "aggregates-per-layer",
    "QRY_QUANTILE": "quantiles-the-extremes-rule",
    "QRY_DISTINCT": "countdistinct-x",
    "QRY_JOIN": "joins-and-fan-out",
    "QRY_FANOUT": "joins-and-fan-out",
    "QRY_DATE_GRANULARITY": "dates",
}


def guidance(code: str) -> dict[str, dict[str, str]]:
    """The optional ``hint`` and ``doc`` of an error entry for a guard code; empty for other codes.

    >>> guidance("QRY_FANOUT")["doc"]
    {'en': 'docs/guard.md#joins-and-fan-out', 'zh': 'docs/guard.md#joins-and-fan-out'}
    >>> guidance("query_cancelled")
    {}
    """
    if code not in HINTS:
        return {}
    en, zh = HINTS[code]
    doc = f"{GUARD_DOCS}#{DOC_SECTIONS[code]}"
    return {"hint": {"en": en, "zh": zh}, "doc": {"en": doc, "zh": doc}}
