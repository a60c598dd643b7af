//! Field tables: how one spec field is checked, and applying a table to an object. Shared by the
//! per-kind rules (`kinds`) and the nested spec rules (`specs`).

use serde_json::{Map, Value};

use super::FieldError;
use super::rules::{
    check_enum, check_object, check_ref, check_ref_list, check_string, check_string_list, join,
    missing,
};

/// How one spec field is checked.
#[derive(Clone, Copy)]
pub(super) enum Shape {
    /// A non-empty string.
    Str,
    /// An array of non-empty strings.
    StrList,
    /// An entity reference, with the kind it defaults to.
    Ref(Option<&'static str>),
    /// An array of entity references, with the kind they default to.
    RefList(Option<&'static str>),
    /// One of a fixed set of strings.
    Enum(&'static [&'static str]),
    /// Any object.
    Object,
    /// A rule of its own, given the field's path and value, and the shape it wants in a few words
    /// (for the kinds' descriptions).
    Custom(fn(&str, &Value, &mut Vec<FieldError>), &'static str),
}

#[derive(Clone, Copy)]
pub(super) struct Field {
    pub name: &'static str,
    pub required: bool,
    pub shape: Shape,
}

pub(super) const fn req(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        required: true,
        shape,
    }
}

pub(super) const fn opt(name: &'static str, shape: Shape) -> Field {
    Field {
        name,
        required: false,
        shape,
    }
}

/// Applies a field table to an object at `path`.
pub(super) fn check_fields(
    obj: &Map<String, Value>,
    path: &str,
    fields: &[Field],
    namespace: &str,
    errs: &mut Vec<FieldError>,
) {
    for field in fields {
        let Some(v) = obj.get(field.name) else {
            if field.required {
                errs.push(missing(path, field.name));
            }
            continue;
        };
        let p = join(path, field.name);
        match field.shape {
            Shape::Str => {
                check_string(&p, v, errs);
            }
            Shape::StrList => check_string_list(&p, v, errs),
            Shape::Ref(kind) => check_ref(&p, v, kind, namespace, errs),
            Shape::RefList(kind) => check_ref_list(&p, v, kind, namespace, errs),
            Shape::Enum(allowed) => check_enum(&p, v, allowed, errs),
            Shape::Object => {
                check_object(&p, v, errs);
            }
            Shape::Custom(check, _) => check(&p, v, errs),
        }
    }
}
