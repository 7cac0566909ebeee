"""The guard's allowlists: every sqlglot node class a query may contain, and nothing else.

A class not listed here is refused, so a new sqlglot release or an exotic DuckDB feature fails
closed. Functions are chosen so that they cannot raise on data values (no error oracles) once the
guard has wrapped arithmetic in ``TRY`` and turned casts into ``TRY_CAST``.
"""

from __future__ import annotations

from sqlglot import exp

from enclave.guard.rules.aggregates import PER_PERSON
from enclave.guard.rules.arguments import DATE_PARTS, PREDICATES

# The shape of a SELECT statement.
STRUCTURE: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Select,
        exp.From,
        exp.Exists,
        exp.Filter,
        exp.Window,
        exp.WindowSpec,
        exp.Join,
        exp.Where,
        exp.Group,
        exp.Having,
        exp.Order,
        exp.Ordered,
        exp.Limit,
        exp.Offset,
        exp.With,
        exp.CTE,
        exp.Subquery,
        exp.Union,
        exp.Table,
        exp.TableAlias,
        exp.Alias,
        exp.Column,
        exp.Identifier,
        exp.Star,
        exp.Distinct,
    }
)

# Scalar building blocks: literals, operators, conditionals, casts.
SCALARS: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Literal,
        exp.Null,
        exp.Paren,
        exp.Neg,
        exp.Add,
        exp.Sub,
        exp.Mul,
        exp.Div,
        exp.IntDiv,
        exp.Mod,
        *PREDICATES,
        exp.Case,
        exp.If,
        exp.Coalesce,
        exp.Nullif,
        exp.Greatest,
        exp.Least,
        exp.Cast,
        exp.TryCast,
        exp.DataType,
        exp.DataTypeParam,
        exp.Interval,
        exp.Var,
        exp.CurrentDate,
    }
)

# Row-level functions: strings, numbers and dates.
FUNCTIONS: frozenset[type[exp.Expression]] = frozenset(
    {
        exp.Abs,
        exp.Round,
        exp.Floor,
        exp.Ceil,
        exp.Lower,
        exp.Upper,
        exp.Length,
        exp.Substring,
        exp.Left,
        exp.Right,
        exp.Trim,
        exp.Concat,
        exp.DPipe,
        exp.Replace,
        *DATE_PARTS,
        exp.DateDiff,
        exp.DateAdd,
        exp.DateSub,
        exp.TimeToStr,
        exp.RowNumber,
        exp.Rank,
        exp.DenseRank,
        exp.PercentRank,
        exp.CumeDist,
        exp.Ntile,
        exp.Lag,
        exp.Lead,
    }
)

# Aggregates the guard knows. Which of them each layer may use is decided by ``rules.aggregates``
# (approximate ones are known only to be refused with a clear reason).
AGGREGATES: frozenset[type[exp.Expression]] = frozenset({*PER_PERSON, exp.ApproxDistinct})

# DuckDB functions sqlglot does not model, allowed by name: name -> number of arguments.
ANONYMOUS: dict[str, int] = {"DATE_PART": 2, "DATEPART": 2}

ALLOWED: frozenset[type[exp.Expression]] = STRUCTURE | SCALARS | FUNCTIONS | AGGREGATES

# Nodes refused with their own code, so the analyst learns which rule they hit.
SPECIFIC_CODES: dict[type[exp.Expression], str] = {
    exp.Qualify: "QRY_WINDOW",
    exp.Pivot: "QRY_PIVOT",
    exp.TableSample: "QRY_SAMPLE",
    exp.Rollup: "QRY_GROUPING_SETS",
    exp.Cube: "QRY_GROUPING_SETS",
    exp.GroupingSets: "QRY_GROUPING_SETS",
    exp.Grouping: "QRY_GROUPING_SETS",
    exp.Intersect: "QRY_SET_OPERATION",
    exp.Except: "QRY_SET_OPERATION",
    exp.TableColumn: "QRY_UNKNOWN_COLUMN",
}

# Where a bare word (``Var``) may appear: as the unit or part of these date functions.
VAR_PARENTS: frozenset[type[exp.Expression]] = frozenset(
    {exp.Extract, exp.DateTrunc, exp.TimestampTrunc, exp.DateDiff, exp.DateAdd, exp.DateSub, exp.Interval}
)

NUMERIC_TYPES = frozenset(
    {
        exp.DataType.Type.TINYINT,
        exp.DataType.Type.SMALLINT,
        exp.DataType.Type.INT,
        exp.DataType.Type.BIGINT,
        exp.DataType.Type.INT128,
        exp.DataType.Type.UTINYINT,
        exp.DataType.Type.USMALLINT,
        exp.DataType.Type.UINT,
        exp.DataType.Type.UBIGINT,
        exp.DataType.Type.FLOAT,
        exp.DataType.Type.DOUBLE,
        exp.DataType.Type.DECIMAL,
    }
)

# Types a CAST may target: scalars only (no structs, lists, maps, unions, JSON, blobs).
CAST_TYPES = NUMERIC_TYPES | frozenset(
    {
        exp.DataType.Type.VARCHAR,
        exp.DataType.Type.TEXT,
        exp.DataType.Type.CHAR,
        exp.DataType.Type.BOOLEAN,
        exp.DataType.Type.DATE,
        exp.DataType.Type.TIMESTAMP,
        exp.DataType.Type.TIMESTAMPNTZ,
    }
)
