namespace PgNotify;

/// <summary>How a <see cref="PgRowCondition"/> compares a column's JSON value with its values.</summary>
public enum PgRowConditionOperator
{
    /// <summary>Equal to the value (same JSON type; numbers by value, strings exactly).</summary>
    Eq,

    /// <summary>Present and not equal to the value.</summary>
    Neq,

    /// <summary>Less than the value (numbers by value, strings by ordinal order; other types never match).</summary>
    Lt,

    /// <summary>Less than or equal to the value.</summary>
    Lte,

    /// <summary>Greater than the value.</summary>
    Gt,

    /// <summary>Greater than or equal to the value.</summary>
    Gte,

    /// <summary>Equal to any of the values.</summary>
    In,
}
