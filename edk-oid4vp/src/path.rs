//! Claims path pointers (OpenID4VP 1.0 §7): a non-empty array of strings (object keys),
//! non-negative integers (array indices) and nulls (every element of an array), applied to a
//! JSON credential (the processed claims of an SD-JWT VC, a W3C credential) or to an mdoc's
//! namespaces.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::PathError;

/// One component of a claims path pointer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PathElement {
    /// A string: the member of that name of every selected object.
    Key(String),
    /// A non-negative integer: the element at that index of every selected array.
    Index(u64),
    /// `null`: every element of every selected array.
    All,
}

impl PathElement {
    /// The component as JSON: a string, an integer or `null`.
    #[must_use]
    pub fn to_json(&self) -> Value {
        match self {
            Self::Key(key) => Value::String(key.clone()),
            Self::Index(index) => Value::from(*index),
            Self::All => Value::Null,
        }
    }

    /// Reads one component from JSON, refusing anything but a string, a non-negative integer
    /// or `null`.
    ///
    /// # Errors
    ///
    /// A text saying what the refused component was.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        match value {
            Value::String(key) => Ok(Self::Key(key.clone())),
            Value::Null => Ok(Self::All),
            Value::Number(number) => number
                .as_u64()
                .map(Self::Index)
                .ok_or_else(|| format!("{number} is not a non-negative integer")),
            other => Err(format!(
                "{other} is not a string, a non-negative integer or null"
            )),
        }
    }
}

/// A claims path pointer: a non-empty sequence of [`PathElement`]s.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClaimPath(Vec<PathElement>);

impl ClaimPath {
    /// A path of the given components.
    ///
    /// # Errors
    ///
    /// When `elements` is empty.
    pub fn new(elements: Vec<PathElement>) -> Result<Self, String> {
        if elements.is_empty() {
            return Err("a claims path pointer must be non-empty".to_owned());
        }
        Ok(Self(elements))
    }

    /// A path of object keys only, e.g. `ClaimPath::keys(["address", "locality"])`.
    ///
    /// # Errors
    ///
    /// When no key is given.
    pub fn keys<I, S>(keys: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::new(
            keys.into_iter()
                .map(|key| PathElement::Key(key.into()))
                .collect(),
        )
    }

    /// Reads a path from its JSON array.
    ///
    /// # Errors
    ///
    /// When `value` is not an array, is empty, or holds a component other than a string, a
    /// non-negative integer or `null`.
    pub fn from_json(value: &Value) -> Result<Self, String> {
        let Value::Array(items) = value else {
            return Err(format!("{value} is not an array"));
        };
        Self::new(
            items
                .iter()
                .map(PathElement::from_json)
                .collect::<Result<_, _>>()?,
        )
    }

    /// The path as its JSON array.
    #[must_use]
    pub fn to_json(&self) -> Value {
        Value::Array(self.0.iter().map(PathElement::to_json).collect())
    }

    /// The components, in order.
    #[must_use]
    pub fn elements(&self) -> &[PathElement] {
        &self.0
    }

    /// The namespace and data element identifier, when the path has exactly two string
    /// components (the only shape an `mso_mdoc` path may have).
    #[must_use]
    pub fn as_mdoc(&self) -> Option<(&str, &str)> {
        match self.0.as_slice() {
            [PathElement::Key(namespace), PathElement::Key(element)] => {
                Some((namespace.as_str(), element.as_str()))
            }
            _ => None,
        }
    }

    /// Applies the path to a JSON credential whose root is `root` (§7.1): the selected
    /// elements, in document order.
    ///
    /// # Errors
    ///
    /// [`PathError::NotAnObject`] or [`PathError::NotAnArray`] when a component meets an element
    /// of the wrong type, [`PathError::NothingSelected`] when the selection ends empty.
    pub fn select_json<'a>(&self, root: &'a Value) -> Result<Vec<&'a Value>, PathError> {
        let mut selected = vec![root];
        for (position, element) in self.0.iter().enumerate() {
            let mut next = Vec::new();
            for value in selected {
                match element {
                    PathElement::Key(key) => {
                        let Value::Object(object) = value else {
                            return Err(PathError::NotAnObject { position });
                        };
                        next.extend(object.get(key));
                    }
                    PathElement::Index(index) => {
                        let Value::Array(array) = value else {
                            return Err(PathError::NotAnArray { position });
                        };
                        next.extend(usize::try_from(*index).ok().and_then(|i| array.get(i)));
                    }
                    PathElement::All => {
                        let Value::Array(array) = value else {
                            return Err(PathError::NotAnArray { position });
                        };
                        next.extend(array.iter());
                    }
                }
            }
            selected = next;
        }
        if selected.is_empty() {
            return Err(PathError::NothingSelected);
        }
        Ok(selected)
    }

    /// Applies the path to an mdoc (§7.2): `namespaces` maps each namespace to an object of its
    /// data elements (their CBOR values converted to JSON).
    ///
    /// # Errors
    ///
    /// [`PathError::MdocPath`] when the path is not two strings, [`PathError::NoNamespace`] and
    /// [`PathError::NoElement`] when the mdoc lacks what it names.
    pub fn select_mdoc<'a>(
        &self,
        namespaces: &'a Map<String, Value>,
    ) -> Result<&'a Value, PathError> {
        let (namespace, element) = self.as_mdoc().ok_or(PathError::MdocPath)?;
        let elements = namespaces
            .get(namespace)
            .and_then(Value::as_object)
            .ok_or_else(|| PathError::NoNamespace(namespace.to_owned()))?;
        elements.get(element).ok_or_else(|| PathError::NoElement {
            namespace: namespace.to_owned(),
            element: element.to_owned(),
        })
    }
}

impl fmt::Display for ClaimPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl Serialize for ClaimPath {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for ClaimPath {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(serde::de::Error::custom)
    }
}
