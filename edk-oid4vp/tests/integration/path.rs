//! Claims path pointers (OpenID4VP 1.0 §7) on JSON credentials and mdocs, with the example of
//! §7.3.

use edk_oid4vp::{ClaimPath, PathElement, PathError};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// The credential of the specification's claims path pointer example.
fn arthur() -> Value {
    json!({
        "name": "Arthur Dent",
        "address": {
            "street_address": "42 Market Street",
            "locality": "Milliways",
            "postal_code": "12345"
        },
        "degrees": [
            { "type": "Bachelor of Science", "university": "University of Betelgeuse" },
            { "type": "Master of Science", "university": "University of Betelgeuse" }
        ],
        "nationalities": ["British", "Betelgeusian"]
    })
}

fn path(json: Value) -> ClaimPath {
    serde_json::from_value(json).unwrap()
}

fn select(pointer: Value, credential: &Value) -> Result<Vec<Value>, PathError> {
    path(pointer)
        .select_json(credential)
        .map(|values| values.into_iter().cloned().collect())
}

#[test]
fn the_examples_of_the_specification_select_what_it_says() {
    let credential = arthur();
    assert_eq!(
        select(json!(["name"]), &credential),
        Ok(vec![json!("Arthur Dent")])
    );
    assert_eq!(
        select(json!(["address"]), &credential),
        Ok(vec![credential["address"].clone()])
    );
    assert_eq!(
        select(json!(["address", "street_address"]), &credential),
        Ok(vec![json!("42 Market Street")])
    );
    assert_eq!(
        select(json!(["degrees", null, "type"]), &credential),
        Ok(vec![
            json!("Bachelor of Science"),
            json!("Master of Science")
        ])
    );
    assert_eq!(
        select(json!(["nationalities", 1]), &credential),
        Ok(vec![json!("Betelgeusian")])
    );
}

#[test]
fn selections_that_end_empty_or_meet_the_wrong_type_are_errors() {
    let credential = arthur();
    assert_eq!(
        select(json!(["age"]), &credential),
        Err(PathError::NothingSelected)
    );
    assert_eq!(
        select(json!(["nationalities", 2]), &credential),
        Err(PathError::NothingSelected)
    );
    assert_eq!(
        select(json!(["degrees", null, "grade"]), &credential),
        Err(PathError::NothingSelected)
    );
    // A key asked of a string, an index asked of an object, all elements of a string.
    assert_eq!(
        select(json!(["name", "first"]), &credential),
        Err(PathError::NotAnObject { position: 1 })
    );
    assert_eq!(
        select(json!(["address", 0]), &credential),
        Err(PathError::NotAnArray { position: 1 })
    );
    assert_eq!(
        select(json!(["name", null]), &credential),
        Err(PathError::NotAnArray { position: 1 })
    );
    // A key asked of an array's elements when one of them is not an object.
    let mixed = json!({ "items": [{ "a": 1 }, "b"] });
    assert_eq!(
        select(json!(["items", null, "a"]), &mixed),
        Err(PathError::NotAnObject { position: 2 })
    );
    // The root must be an object for a key.
    assert_eq!(
        select(json!(["a"]), &json!([1])),
        Err(PathError::NotAnObject { position: 0 })
    );
}

#[test]
fn elements_lacking_a_key_or_index_drop_out_of_the_selection() {
    let credential = json!({
        "list": [{ "a": 1 }, { "b": 2 }, { "a": 3 }],
        "nested": [[1, 2], [3]]
    });
    assert_eq!(
        select(json!(["list", null, "a"]), &credential),
        Ok(vec![json!(1), json!(3)])
    );
    assert_eq!(
        select(json!(["nested", null, 1]), &credential),
        Ok(vec![json!(2)])
    );
    assert_eq!(
        select(json!(["nested", null, null]), &credential),
        Ok(vec![json!(1), json!(2), json!(3)])
    );
}

#[test]
fn paths_are_read_only_from_strings_non_negative_integers_and_nulls() {
    assert_eq!(
        path(json!(["a", 0, null])).elements(),
        [
            PathElement::Key("a".to_owned()),
            PathElement::Index(0),
            PathElement::All
        ]
    );
    for bad in [
        json!([]),
        json!(["a", -1]),
        json!([1.5]),
        json!([{}]),
        json!([[0]]),
        json!("a"),
    ] {
        assert!(ClaimPath::from_json(&bad).is_err(), "{bad}");
    }
    assert_eq!(path(json!(["a", 0, null])).to_string(), r#"["a",0,null]"#);
}

fn namespaces() -> Map<String, Value> {
    json!({
        "org.iso.18013.5.1": { "given_name": "Erika", "age_over_18": true },
        "org.iso.18013.5.1.aamva": { "DHS_compliance": "F" }
    })
    .as_object()
    .unwrap()
    .clone()
}

#[test]
fn mdoc_paths_select_a_namespace_and_an_element() {
    let namespaces = namespaces();
    assert_eq!(
        path(json!(["org.iso.18013.5.1", "age_over_18"])).select_mdoc(&namespaces),
        Ok(&json!(true))
    );
    assert_eq!(
        path(json!(["org.iso.18013.5.1.aamva", "given_name"])).select_mdoc(&namespaces),
        Err(PathError::NoElement {
            namespace: "org.iso.18013.5.1.aamva".to_owned(),
            element: "given_name".to_owned(),
        })
    );
    assert_eq!(
        path(json!(["org.iso.23220.1", "given_name"])).select_mdoc(&namespaces),
        Err(PathError::NoNamespace("org.iso.23220.1".to_owned()))
    );
    for shape in [
        json!(["org.iso.18013.5.1"]),
        json!(["org.iso.18013.5.1", "given_name", 0]),
        json!(["org.iso.18013.5.1", null]),
        json!([0, "given_name"]),
    ] {
        assert_eq!(
            path(shape.clone()).select_mdoc(&namespaces),
            Err(PathError::MdocPath),
            "{shape}"
        );
    }
}

/// Any JSON value, a few levels deep.
pub(crate) fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1.0e6f64..1.0e6).prop_map(Value::from),
        "[a-c]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-c]{1,2}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

fn arbitrary_path() -> impl Strategy<Value = ClaimPath> {
    let element = prop_oneof![
        "[a-c]{1,2}".prop_map(PathElement::Key),
        (0u64..4).prop_map(PathElement::Index),
        Just(PathElement::All),
    ];
    prop::collection::vec(element, 1..5).prop_map(|elements| ClaimPath::new(elements).unwrap())
}

/// What a path selects, computed one path at a time: the values reached by every way of
/// following the path (wildcards expanded), or the first type error met.
fn expected(path: &[PathElement], value: &Value, position: usize) -> Result<Vec<Value>, PathError> {
    let Some((first, rest)) = path.split_first() else {
        return Ok(vec![value.clone()]);
    };
    let children: Vec<&Value> = match (first, value) {
        (PathElement::Key(key), Value::Object(object)) => object.get(key).into_iter().collect(),
        (PathElement::Key(_), _) => return Err(PathError::NotAnObject { position }),
        (PathElement::Index(index), Value::Array(array)) => array
            .get(usize::try_from(*index).unwrap())
            .into_iter()
            .collect(),
        (PathElement::All, Value::Array(array)) => array.iter().collect(),
        (_, _) => return Err(PathError::NotAnArray { position }),
    };
    let mut out = Vec::new();
    for child in children {
        out.extend(expected(rest, child, position + 1)?);
    }
    Ok(out)
}

proptest! {
    /// A path read back from its JSON is the same path.
    #[test]
    fn paths_survive_their_json(path in arbitrary_path()) {
        prop_assert_eq!(ClaimPath::from_json(&path.to_json()).unwrap(), path);
    }

    /// On documents without type errors, the selection is every value reached by following the
    /// path; an empty selection is an error.
    #[test]
    fn selection_follows_the_path(path in arbitrary_path(), document in arbitrary_json()) {
        let document = json!({ "a": document, "b": [document, document] });
        let actual = path.select_json(&document).map(|values| values.into_iter().cloned().collect::<Vec<_>>());
        match expected(path.elements(), &document, 0) {
            Ok(values) if values.is_empty() => prop_assert_eq!(actual, Err(PathError::NothingSelected)),
            Ok(values) => prop_assert_eq!(actual, Ok(values)),
            // The breadth-first processing reports the first type error by position, which a
            // depth-first walk reaches in another order; both refuse.
            Err(_) => prop_assert!(actual.is_err()),
        }
    }
}
