//! Reading a `serde_json::Value` along a fixed path of object keys. serde_json's `pointer`
//! allocates two strings per path segment (it unescapes `~0` and `~1`); the policy's paths are
//! constants, read on every decision.

use serde_json::Value;

pub trait At {
    /// The value at `path`, each step a key of an object (never an array index).
    fn at(&self, path: impl IntoIterator<Item = impl AsRef<str>>) -> Option<&Value>;

    /// `at`, mutably.
    fn at_mut(&mut self, path: impl IntoIterator<Item = impl AsRef<str>>) -> Option<&mut Value>;
}

impl At for Value {
    fn at(&self, path: impl IntoIterator<Item = impl AsRef<str>>) -> Option<&Value> {
        path.into_iter()
            .try_fold(self, |value, key| value.get(key.as_ref()))
    }

    fn at_mut(&mut self, path: impl IntoIterator<Item = impl AsRef<str>>) -> Option<&mut Value> {
        path.into_iter()
            .try_fold(self, |value, key| value.get_mut(key.as_ref()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn at_reads_object_keys_only() {
        let mut value = json!({"a": {"b": [1, {"c": 2}]}, "d~1e": 3});
        assert_eq!(value.at(["a", "b"]), Some(&json!([1, {"c": 2}])));
        assert_eq!(value.at(["a", "b", "0"]), None);
        assert_eq!(value.at(["a", "x"]), None);
        assert_eq!(value.at(["d~1e"]), Some(&json!(3)));
        assert_eq!(value.at([""; 0]), Some(&value.clone()));
        if let Some(b) = value.at_mut(["a", "b"]) {
            *b = json!(null);
        }
        assert_eq!(value.at(["a", "b"]), Some(&Value::Null));
    }
}
