//! Changes to a JSON object, recorded apart from it and applied once, when the answer is written:
//! the request's object is then edited in place. A decision copies none of it (copying a DittoFS
//! pod, dropping the copy and comparing it with the original cost an injection about 100,000 of
//! its 400,000 instructions: docs/performance.md).

use std::borrow::Cow;

use serde_json::{Map, Value};

/// One step of a path: an object's key or an array's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl From<&str> for Step {
    fn from(key: &str) -> Self {
        Self::Key(key.to_owned())
    }
}

impl From<usize> for Step {
    fn from(index: usize) -> Self {
        Self::Index(index)
    }
}

/// A path for messages: `spec.containers[0].env`.
pub fn dotted(path: &[Step]) -> String {
    let mut text = String::new();
    for step in path {
        match step {
            Step::Key(key) => {
                if !text.is_empty() {
                    text.push('.');
                }
                text.push_str(key);
            }
            Step::Index(index) => text.push_str(&format!("[{index}]")),
        }
    }
    text
}

/// The value at `path`, if there is one.
pub fn get<'v>(value: &'v Value, path: &[Step]) -> Option<&'v Value> {
    path.iter().try_fold(value, |value, step| match step {
        Step::Key(key) => value.get(key),
        Step::Index(index) => value.get(index),
    })
}

#[derive(Debug, Clone, PartialEq)]
struct Edit {
    path: Vec<Step>,
    /// `None` removes the key.
    value: Option<Value>,
}

/// Values set at, or keys removed from, paths of one object, in order. Objects missing or null
/// on the way to a value are created; only objects and arrays are walked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Edits(Vec<Edit>);

impl Edits {
    /// Records that `path` of `object` becomes `value`, unless it already is. `Err` names the
    /// field on the way that is neither an object (nor missing or null), nor an array holding
    /// the index.
    pub fn set(&mut self, object: &Value, path: Vec<Step>, value: Value) -> Result<(), String> {
        match reach(object, &path)? {
            Some(current) if *current == value => Ok(()),
            _ => {
                self.0.push(Edit {
                    path,
                    value: Some(value),
                });
                Ok(())
            }
        }
    }

    /// Records that the last key of `path` is removed from `object`, when it is there.
    pub fn remove(&mut self, object: &Value, path: Vec<Step>) {
        if matches!(path.last(), Some(Step::Key(_))) && get(object, &path).is_some() {
            self.0.push(Edit { path, value: None });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Applies the edits to `object`; `Err` names a field that does not have the shape the
    /// edit was recorded against (never, for the object the edits were recorded on).
    pub fn apply(self, object: &mut Value) -> Result<(), String> {
        for edit in self.0 {
            apply(object, &edit.path, edit.value)?;
        }
        Ok(())
    }

    /// The value at `path` of `object` once the edits are applied: borrowed (from the object or
    /// from an edit) unless an edit changes something inside it, then a copy of that part alone.
    pub fn view<'v>(&'v self, object: &'v Value, path: &[Step]) -> Option<Cow<'v, Value>> {
        let mut view = get(object, path).map(Cow::Borrowed);
        for edit in &self.0 {
            if let Some(inside) = path.strip_prefix(edit.path.as_slice()) {
                // The edit replaces `path` or one of its parents.
                view = edit
                    .value
                    .as_ref()
                    .and_then(|value| get(value, inside))
                    .map(Cow::Borrowed);
            } else if let Some(below) = edit.path.strip_prefix(path) {
                let mut changed = view.map(Cow::into_owned).unwrap_or(Value::Null);
                apply(&mut changed, below, edit.value.clone()).ok()?;
                view = Some(Cow::Owned(changed));
            }
        }
        view
    }
}

/// The value at `path` if there is one, after checking that `path` can be written.
fn reach<'v>(object: &'v Value, path: &[Step]) -> Result<Option<&'v Value>, String> {
    let mut current = Some(object);
    for (depth, step) in path.iter().enumerate() {
        let field = || dotted(path.get(..depth).unwrap_or_default());
        current = match (current, step) {
            (None | Some(Value::Null), Step::Key(_)) => None,
            (Some(Value::Object(map)), Step::Key(key)) => map.get(key),
            (Some(Value::Array(items)), Step::Index(index)) => {
                Some(items.get(*index).ok_or_else(field)?)
            }
            _ => return Err(field()),
        };
    }
    Ok(current)
}

fn apply(object: &mut Value, path: &[Step], value: Option<Value>) -> Result<(), String> {
    let Some((last, parents)) = path.split_last() else {
        if let Some(value) = value {
            *object = value;
        }
        return Ok(());
    };
    let mut current = object;
    for (depth, step) in parents.iter().enumerate() {
        current =
            child(current, step).ok_or_else(|| dotted(path.get(..depth).unwrap_or_default()))?;
    }
    match (current, last, value) {
        (Value::Array(items), Step::Index(index), Some(value)) => {
            let slot = items.get_mut(*index).ok_or_else(|| dotted(path))?;
            *slot = value;
        }
        (current, Step::Key(key), Some(value)) => {
            let map = object_of(current).ok_or_else(|| dotted(parents))?;
            match map.get_mut(key) {
                Some(slot) => *slot = value,
                None => {
                    map.insert(key.clone(), value);
                }
            }
        }
        (Value::Object(map), Step::Key(key), None) => {
            map.remove(key);
        }
        _ => return Err(dotted(path)),
    }
    Ok(())
}

/// The child at `step`, an object created for a key that is missing or null. The key is copied
/// only when it is missing (an edit's path mostly runs through existing fields).
fn child<'v>(value: &'v mut Value, step: &Step) -> Option<&'v mut Value> {
    match step {
        Step::Key(key) => {
            let map = object_of(value)?;
            if !map.contains_key(key) {
                map.insert(key.clone(), Value::Null);
            }
            map.get_mut(key)
        }
        Step::Index(index) => value.as_array_mut()?.get_mut(*index),
    }
}

/// `value` as an object, a null becoming an empty one.
fn object_of(value: &mut Value) -> Option<&mut Map<String, Value>> {
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    value.as_object_mut()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn path(steps: &[Step]) -> Vec<Step> {
        steps.to_vec()
    }

    fn key(key: &str) -> Step {
        Step::from(key)
    }

    #[test]
    fn a_set_that_changes_nothing_is_not_recorded() {
        let object = json!({"metadata": {"annotations": {"a": "1"}}});
        let mut edits = Edits::default();
        let annotation = path(&[key("metadata"), key("annotations"), key("a")]);
        edits
            .set(&object, annotation.clone(), json!("1"))
            .expect("writable");
        assert!(edits.is_empty());
        edits
            .set(&object, annotation, json!("2"))
            .expect("writable");
        assert!(!edits.is_empty());
    }

    #[test]
    fn objects_missing_or_null_on_the_way_are_created_and_nothing_else_is_touched() {
        let mut object = json!({"spec": {"x": [1, 2]}, "metadata": {"annotations": null}, "z": 0});
        let original = object.clone();
        let mut edits = Edits::default();
        let note = path(&[key("metadata"), key("annotations"), key("a")]);
        let label = path(&[key("metadata"), key("labels"), key("l")]);
        let item = path(&[key("spec"), key("x"), Step::Index(1)]);
        edits.set(&original, note, json!("1")).expect("writable");
        edits.set(&original, label, json!("v")).expect("writable");
        edits
            .set(&original, item, json!({"n": 2}))
            .expect("writable");
        edits.apply(&mut object).expect("applies");
        assert_eq!(
            object,
            json!({"spec": {"x": [1, {"n": 2}]}, "z": 0,
                   "metadata": {"annotations": {"a": "1"}, "labels": {"l": "v"}}})
        );
    }

    #[test]
    fn a_path_through_another_type_is_refused_naming_the_field() {
        let object = json!({"metadata": "text", "spec": {"containers": [{"name": "c"}]}});
        let mut edits = Edits::default();
        let through_text = path(&[key("metadata"), key("annotations"), key("a")]);
        assert_eq!(
            edits.set(&object, through_text, json!("1")),
            Err("metadata".to_owned())
        );
        let past_the_end = path(&[key("spec"), key("containers"), Step::Index(3), key("env")]);
        assert_eq!(
            edits.set(&object, past_the_end, json!([])),
            Err("spec.containers".to_owned())
        );
        let index_into_object = path(&[key("spec"), Step::Index(0)]);
        assert_eq!(
            edits.set(&object, index_into_object, json!(1)),
            Err("spec".to_owned())
        );
        assert!(edits.is_empty());
    }

    #[test]
    fn removal_is_recorded_only_for_a_present_key() {
        let mut object = json!({"metadata": {"annotations": {"a": "1", "b": "2"}}});
        let original = object.clone();
        let mut edits = Edits::default();
        edits.remove(
            &original,
            path(&[key("metadata"), key("annotations"), key("x")]),
        );
        edits.remove(&original, path(&[key("metadata"), key("labels"), key("a")]));
        assert!(edits.is_empty());
        edits.remove(
            &original,
            path(&[key("metadata"), key("annotations"), key("a")]),
        );
        edits.apply(&mut object).expect("applies");
        assert_eq!(object, json!({"metadata": {"annotations": {"b": "2"}}}));
    }

    #[test]
    fn applying_to_an_object_of_another_shape_names_the_field() {
        let recorded_on = json!({"spec": {"containers": [{"name": "c"}]}});
        let mut edits = Edits::default();
        let env = path(&[key("spec"), key("containers"), Step::Index(0), key("env")]);
        edits.set(&recorded_on, env, json!([])).expect("writable");
        let mut other = json!({"spec": {"containers": []}});
        assert_eq!(edits.apply(&mut other), Err("spec.containers".to_owned()));
    }

    #[test]
    fn a_view_borrows_what_no_edit_touches_and_copies_what_one_does() {
        let object = json!({"spec": {"containers": [{"name": "c", "image": "i"}, {"name": "d"}]}});
        let first = path(&[key("spec"), key("containers"), Step::Index(0)]);
        let second = path(&[key("spec"), key("containers"), Step::Index(1)]);
        let mut edits = Edits::default();
        let mut env = first.clone();
        env.push(key("env"));
        edits
            .set(&object, env, json!([{"name": "A"}]))
            .expect("writable");
        let mut image = first.clone();
        image.push(key("image"));
        edits.remove(&object, image);
        assert!(matches!(
            edits.view(&object, &second),
            Some(Cow::Borrowed(_))
        ));
        assert_eq!(
            edits.view(&object, &first).map(Cow::into_owned),
            Some(json!({"name": "c", "env": [{"name": "A"}]}))
        );
        let mut replaced = Edits::default();
        replaced.0.push(Edit {
            path: path(&[key("spec")]),
            value: Some(json!({"containers": [{"name": "new"}]})),
        });
        assert_eq!(
            replaced.view(&object, &first).map(Cow::into_owned),
            Some(json!({"name": "new"}))
        );
        assert_eq!(replaced.view(&object, &second), None);
    }

    #[test]
    fn paths_read_as_fields_in_messages() {
        let env = path(&[key("spec"), key("containers"), Step::Index(2), key("env")]);
        assert_eq!(dotted(&env), "spec.containers[2].env");
        assert_eq!(dotted(&[]), "");
    }
}
