//! Typed component parameters: a component declares its parameters once as
//! a `serde` struct and receives that struct, never a map to read by name.
//!
//! [`TypedComponent`] is what a component implements; every one of them is
//! a [`Component`] through the adapter below, which deserializes
//! `ctx.params` for a run and the compiler's substituted parameters for
//! `flywheel check`. A value the struct refuses is named by its parameter,
//! both at run time ([`parse`]) and in a check ([`check`]). The static
//! [`ComponentSpec`] stays the compiler's and the CLI's description;
//! [`disagreements`] proves a spec and its struct say the same thing.

use crate::exec::{Component, ExecContext, ExecError, Role};
use crate::spec::{ComponentSpec, ParamProblem};
use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde_json::{Map, Value as Json};
use std::cell::RefCell;

/// A component whose executor takes its parameters as a struct.
pub trait TypedComponent: Send + Sync {
    /// The parameters, `#[serde(deny_unknown_fields)]`, defaults as the spec states them.
    type Params: DeserializeOwned;

    fn spec(&self) -> &'static ComponentSpec;

    fn role(&self) -> Role {
        Role::Ordinary
    }

    /// Problems that can be known before anything runs, found by the
    /// parsers the executor uses (see [`Component::check_params`]).
    fn check(&self, _params: &Self::Params) -> Vec<ParamProblem> {
        Vec::new()
    }

    /// Does the work with the step's parameters.
    fn run(&self, params: Self::Params, ctx: &ExecContext) -> Result<(), ExecError>;
}

impl<T: TypedComponent> Component for T {
    fn spec(&self) -> &'static ComponentSpec {
        TypedComponent::spec(self)
    }

    fn execute(&self, ctx: &ExecContext) -> Result<(), ExecError> {
        let params = parse(TypedComponent::spec(self), &ctx.params)?;
        self.run(params, ctx)
    }

    fn role(&self) -> Role {
        TypedComponent::role(self)
    }

    fn check_params(&self, params: &Map<String, Json>) -> Vec<ParamProblem> {
        check(self, params)
    }
}

/// The parameters of a run as `P`; a missing or refused one is the step's
/// failure, naming the parameter.
pub fn parse<P: DeserializeOwned>(spec: &ComponentSpec, params: &Map<String, Json>) -> Result<P, ExecError> {
    if let Some(p) = spec.params.iter().find(|p| p.required && !params.contains_key(p.name)) {
        return Err(ExecError::failed(format!("parameter `{}` is required", p.name)));
    }
    deserialize(spec, params)
        .map_err(|p| ExecError::failed(if p.path.is_empty() { p.message } else { format!("parameter {}", p.message) }))
}

/// A component's problems with `params` as the compiler hands them over:
/// some may be left out (a wrong type, an unresolved `${…}`, a missing
/// required one, each reported by the compiler already). A left-out
/// required parameter is stood in for by a placeholder, and problems the
/// component finds with a placeholder are dropped, so that every other
/// parameter is still checked.
pub fn check<T: TypedComponent + ?Sized>(component: &T, params: &Map<String, Json>) -> Vec<ParamProblem> {
    let spec = component.spec();
    let mut filled = params.clone();
    let mut placeholders = Vec::new();
    for p in spec.params.iter().filter(|p| p.required && !params.contains_key(p.name)) {
        filled.insert(p.name.to_string(), p.ty.placeholder());
        placeholders.push(p.name);
    }
    match deserialize::<T::Params>(spec, &filled) {
        Ok(typed) => component
            .check(&typed)
            .into_iter()
            .filter(|p| !p.path.first().is_some_and(|k| placeholders.contains(&k.as_str())))
            .collect(),
        Err(problem) => vec![problem],
    }
}

/// Deserializes `params`, a failure as a problem at the parameter it is about.
fn deserialize<P: DeserializeOwned>(spec: &ComponentSpec, params: &Map<String, Json>) -> Result<P, ParamProblem> {
    let at = RefCell::new(None::<String>);
    let result = P::deserialize(Tracked { params, at: &at });
    result.map_err(|e| {
        let Some(key) = at.take() else { return ParamProblem::value(&[], format!("parameters: {e}")) };
        match (spec.param(&key), params.get(&key)) {
            (None, _) => ParamProblem::key(&[&key], format!("`{key}`: not a parameter of `{}`", spec.name)),
            (Some(p), Some(v)) if p.ty.check(v).is_err() => {
                ParamProblem::value(&[&key], format!("`{key}`: {}", p.ty.check(v).unwrap_err()))
            }
            _ => ParamProblem::value(&[&key], format!("`{key}`: {e}")),
        }
    })
}

/// A map of parameters as a serde deserializer that remembers which key it
/// was reading when something went wrong.
struct Tracked<'a> {
    params: &'a Map<String, Json>,
    at: &'a RefCell<Option<String>>,
}

impl<'de> de::Deserializer<'de> for Tracked<'_> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_map(TrackedMap { entries: self.params.iter(), value: None, at: self.at })
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
        unit_struct newtype_struct seq tuple tuple_struct map struct enum identifier ignored_any
    }
}

struct TrackedMap<'a> {
    entries: serde_json::map::Iter<'a>,
    value: Option<&'a Json>,
    at: &'a RefCell<Option<String>>,
}

impl<'de> MapAccess<'de> for TrackedMap<'_> {
    type Error = serde_json::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Self::Error> {
        let Some((key, value)) = self.entries.next() else {
            *self.at.borrow_mut() = None;
            return Ok(None);
        };
        *self.at.borrow_mut() = Some(key.clone());
        self.value = Some(value);
        seed.deserialize(key.as_str().into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Self::Error> {
        seed.deserialize(self.value.take().cloned().unwrap_or(Json::Null))
    }
}

/// Where a spec and its parameter struct disagree, one sentence each:
/// names, required-ness, types (every value the spec's type accepts is
/// accepted, a value of another kind refused) and defaults (a default the
/// struct fills in is the one the spec's doc states as "default X").
/// Empty when they agree. For a test over every component.
pub fn disagreements<P: DeserializeOwned + serde::Serialize>(spec: &ComponentSpec) -> Vec<String> {
    let mut out = Vec::new();
    let fields = struct_fields::<P>();
    for f in &fields {
        if spec.param(f).is_none() {
            out.push(format!("`{}`: the struct has `{f}`, the spec does not", spec.name));
        }
    }
    let required: Map<String, Json> =
        spec.params.iter().filter(|p| p.required).map(|p| (p.name.to_string(), p.ty.placeholder())).collect();
    let accepts = |m: &Map<String, Json>| deserialize::<P>(spec, m).map_err(|p| p.message);
    let defaults = match accepts(&required) {
        Ok(p) => serde_json::to_value(p).unwrap_or_default(),
        Err(e) => {
            out.push(format!("`{}`: the spec's required parameters alone are refused: {e}", spec.name));
            Json::Null
        }
    };
    for p in spec.params {
        let at = format!("`{}.{}`", spec.name, p.name);
        if !fields.contains(&p.name) {
            out.push(format!("{at}: the spec has it, the struct does not"));
            continue;
        }
        let mut without = required.clone();
        if p.required && without.remove(p.name).is_some() && accepts(&without).is_ok() {
            out.push(format!("{at}: required by the spec, optional in the struct"));
        }
        for (sample, fits) in p.ty.samples() {
            let mut with = required.clone();
            with.insert(p.name.to_string(), sample.clone());
            if accepts(&with).is_ok() != fits {
                let verb = if fits { "refuses" } else { "accepts" };
                out.push(format!("{at}: the struct {verb} {sample}, which the spec's {} does not", p.ty.describe()));
            }
        }
        if let Some(problem) = default_disagreement(p.doc, &defaults[p.name]).filter(|_| !p.required) {
            out.push(format!("{at}: {problem}"));
        }
    }
    out
}

/// The field names `P` deserializes, as its derived `Deserialize` declares them.
fn struct_fields<P: DeserializeOwned>() -> Vec<&'static str> {
    struct Fields(RefCell<&'static [&'static str]>);
    impl<'de> de::Deserializer<'de> for &Fields {
        type Error = serde_json::Error;
        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            *self.0.borrow_mut() = fields;
            Err(de::Error::custom("fields recorded"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option unit
            unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }
    let fields = Fields(RefCell::new(&[]));
    let _ = P::deserialize(&fields);
    fields.0.into_inner().to_vec()
}

/// A default the struct fills in must be the one the doc states
/// (`default 50`, `default auto: …`); a field left empty (`null`) is the
/// executor's to decide, whatever the doc says.
fn default_disagreement(doc: &str, default: &Json) -> Option<String> {
    if default.is_null()
        || default.as_object().is_some_and(Map::is_empty)
        || default.as_array().is_some_and(Vec::is_empty)
    {
        return None;
    }
    let stated = doc.split("default ").nth(1).map(|rest| {
        rest.split(|c: char| c.is_whitespace() || ",;:)".contains(c)).next().unwrap_or_default().trim_matches('"')
    });
    let agrees = match (stated, default) {
        (Some(s), Json::Number(n)) => s.parse::<f64>().ok() == n.as_f64(),
        (Some(s), Json::String(d)) => s == d,
        (Some(s), Json::Bool(b)) => s == b.to_string(),
        _ => false,
    };
    (!agrees).then(|| format!("the struct's default is {default}, the doc says {:?}", stated.unwrap_or("nothing")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{ParamSpec, ParamType};
    use serde_json::json;

    static SPEC: ComponentSpec = ComponentSpec {
        name: "demo",
        version: "1",
        description: "",
        params: &[
            ParamSpec { name: "name", ty: ParamType::String, required: true, doc: "" },
            ParamSpec { name: "top_k", ty: ParamType::Int, required: false, doc: "how many (default 50)" },
            ParamSpec { name: "mode", ty: ParamType::Enum(&["a", "b"]), required: false, doc: "(default a)" },
        ],
        inputs: &[],
        outputs: &[],
        dynamic_ports: false,
    };

    #[derive(serde::Deserialize, serde::Serialize)]
    #[serde(deny_unknown_fields)]
    struct Demo {
        name: String,
        #[serde(default = "fifty")]
        top_k: i64,
        #[serde(default = "a")]
        mode: String,
    }
    fn fifty() -> i64 {
        50
    }
    fn a() -> String {
        "a".into()
    }

    #[derive(serde::Deserialize, serde::Serialize)]
    struct Drifted {
        name: Option<String>,
        #[serde(default)]
        top_k: f64,
        extra: Option<bool>,
    }

    fn map(v: Json) -> Map<String, Json> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn a_bad_value_names_its_parameter() {
        let e = parse::<Demo>(&SPEC, &map(json!({ "name": "x", "top_k": "many" }))).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("parameter `top_k`: expected an integer, found a string"));
        let e = parse::<Demo>(&SPEC, &map(json!({ "top_k": 3 }))).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("parameter `name` is required"));
        let p = deserialize::<Demo>(&SPEC, &map(json!({ "name": "x", "topk": 3 }))).err().unwrap();
        assert_eq!((p.path, p.at_key), (vec!["topk".to_string()], true));
        let e = parse::<Demo>(&SPEC, &map(json!({ "name": "x", "topk": 3 }))).err().map(|e| e.to_string());
        assert_eq!(e.as_deref(), Some("parameter `topk`: not a parameter of `demo`"));
        let d = parse::<Demo>(&SPEC, &map(json!({ "name": "x" }))).unwrap();
        assert_eq!((d.top_k, d.mode.as_str()), (50, "a"));
    }

    #[test]
    fn a_spec_and_its_struct_agree_or_every_difference_is_named() {
        assert_eq!(disagreements::<Demo>(&SPEC), Vec::<String>::new());
        let found = disagreements::<Drifted>(&SPEC);
        let has = |words: &str| found.iter().any(|d| d.contains(words));
        assert!(has("the struct has `extra`, the spec does not"), "{found:#?}");
        assert!(has("`demo.name`: required by the spec, optional in the struct"), "{found:#?}");
        assert!(has("`demo.top_k`: the struct accepts 1.5"), "{found:#?}");
        assert!(has("`demo.top_k`: the struct's default is 0.0, the doc says \"50\""), "{found:#?}");
        assert!(has("`demo.mode`: the spec has it, the struct does not"), "{found:#?}");
    }

    struct Checked;

    impl TypedComponent for Checked {
        type Params = Demo;
        fn spec(&self) -> &'static ComponentSpec {
            &SPEC
        }
        fn check(&self, p: &Demo) -> Vec<ParamProblem> {
            let mut out = Vec::new();
            if p.name.is_empty() {
                out.push(ParamProblem::value(&["name"], "empty name"));
            }
            if p.top_k < 1 {
                out.push(ParamProblem::value(&["top_k"], "too few"));
            }
            out
        }
        fn run(&self, _: Demo, _: &ExecContext) -> Result<(), ExecError> {
            Ok(())
        }
    }

    #[test]
    fn a_check_passes_over_what_the_compiler_left_out_and_checks_the_rest() {
        let messages = |v: Json| check(&Checked, &map(v)).into_iter().map(|p| p.message).collect::<Vec<_>>();
        // `name` left out (missing, or an unresolved `${…}`): its placeholder's problem is not one.
        assert_eq!(messages(json!({ "top_k": 0 })), ["too few"]);
        assert_eq!(messages(json!({ "name": "", "top_k": 0 })), ["empty name", "too few"]);
        assert_eq!(messages(json!({ "name": "x" })), Vec::<String>::new());
    }
}
