//! The parsed expression tree.

use serde_json::Value;

use crate::path::Path;

/// Comparison operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Arithmetic operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

/// Built-in functions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Func {
    Lower,
    Upper,
    Trim,
    Length,
    Coalesce,
    Round,
    Concat,
    Substr,
    Abs,
    ToInt,
    ToBigint,
    ToDouble,
    ToBoolean,
    Like,
    ToDecimal,
}

impl Func {
    const ALL: [(&'static str, Func); 15] = [
        ("abs", Func::Abs),
        ("coalesce", Func::Coalesce),
        ("concat", Func::Concat),
        ("length", Func::Length),
        ("like", Func::Like),
        ("lower", Func::Lower),
        ("round", Func::Round),
        ("substr", Func::Substr),
        ("to_bigint", Func::ToBigint),
        ("to_boolean", Func::ToBoolean),
        ("to_decimal", Func::ToDecimal),
        ("to_double", Func::ToDouble),
        ("to_int", Func::ToInt),
        ("trim", Func::Trim),
        ("upper", Func::Upper),
    ];

    pub(crate) const ALL_NAMES: [&'static str; 15] = [
        "abs",
        "coalesce",
        "concat",
        "length",
        "like",
        "lower",
        "round",
        "substr",
        "to_bigint",
        "to_boolean",
        "to_decimal",
        "to_double",
        "to_int",
        "trim",
        "upper",
    ];

    /// Looks a function up by name, case-insensitively.
    pub(crate) fn from_name(name: &str) -> Option<Func> {
        Self::ALL
            .iter()
            .find(|(n, _)| name.eq_ignore_ascii_case(n))
            .map(|(_, f)| *f)
    }

    pub(crate) fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, f)| *f == self)
            .map_or("?", |(n, _)| n)
    }

    /// (minimum, maximum) number of arguments; `None` is unbounded.
    pub(crate) fn arity(self) -> (usize, Option<usize>) {
        match self {
            Func::Lower
            | Func::Upper
            | Func::Trim
            | Func::Length
            | Func::Abs
            | Func::ToInt
            | Func::ToBigint
            | Func::ToDouble
            | Func::ToBoolean => (1, Some(1)),
            Func::Round => (1, Some(2)),
            Func::Substr => (2, Some(3)),
            Func::Like => (2, Some(3)),
            Func::ToDecimal => (3, Some(3)),
            Func::Coalesce | Func::Concat => (1, None),
        }
    }
}

/// One node of the tree.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Node {
    Lit(Value),
    /// A field path, and the index of its first name in the expression's
    /// top-level fields (the parser numbers them): evaluating against loaded
    /// fields then finds it without comparing names.
    Field(Path, usize),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    Arith(ArithOp, Box<Node>, Box<Node>),
    Concat(Box<Node>, Box<Node>),
    In {
        value: Box<Node>,
        list: Box<[Node]>,
        negated: bool,
    },
    IsNull {
        value: Box<Node>,
        negated: bool,
    },
    Case {
        operand: Option<Box<Node>>,
        whens: Box<[(Node, Node)]>,
        otherwise: Option<Box<Node>>,
    },
    Call(Func, Box<[Node]>),
    /// A call of the pipeline's user-defined function (lowercase name).
    Udf(Box<str>, Box<[Node]>),
}

impl Node {
    /// Depth of the tree, computed without recursion.
    pub(crate) fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack: Vec<(&Node, usize)> = vec![(self, 1)];
        while let Some((node, d)) = stack.pop() {
            max = max.max(d);
            node.for_each_child(&mut |n| stack.push((n, d + 1)));
        }
        max
    }

    /// The first names of all field paths, each once, in order of appearance.
    pub(crate) fn top_level_fields(&self) -> Vec<Box<str>> {
        let mut out: Vec<Box<str>> = Vec::new();
        let mut stack: Vec<&Node> = vec![self];
        while let Some(node) = stack.pop() {
            if let Node::Field(path, _) = node {
                if let Some(first) = path.names().next() {
                    if !out.iter().any(|f| &**f == first) {
                        out.push(first.into());
                    }
                }
            }
            let mut children = Vec::new();
            node.for_each_child(&mut |n| children.push(n));
            stack.extend(children.into_iter().rev());
        }
        out
    }

    pub(crate) fn for_each_child<'a>(&'a self, f: &mut dyn FnMut(&'a Node)) {
        match self {
            Node::Lit(_) | Node::Field(..) => {}
            Node::Not(a) | Node::Neg(a) => f(a),
            Node::And(a, b)
            | Node::Or(a, b)
            | Node::Cmp(_, a, b)
            | Node::Arith(_, a, b)
            | Node::Concat(a, b) => {
                f(a);
                f(b);
            }
            Node::In { value, list, .. } => {
                f(value);
                list.iter().for_each(f);
            }
            Node::IsNull { value, .. } => f(value),
            Node::Case {
                operand,
                whens,
                otherwise,
            } => {
                if let Some(o) = operand {
                    f(o);
                }
                for (w, t) in whens.iter() {
                    f(w);
                    f(t);
                }
                if let Some(o) = otherwise {
                    f(o);
                }
            }
            Node::Call(_, args) | Node::Udf(_, args) => args.iter().for_each(f),
        }
    }
}
