//! `read_file {path}`, `write_file {path, content}`, `list_dir {path}`,
//! jailed to `[tools.files] root`.
//!
//! A path argument must be relative, without `..` components or NUL bytes.
//! It is then resolved with symlinks followed (for a write: its parent
//! directory) and must stay inside the canonical root. Files are opened
//! with `O_NOFOLLOW`, so a symlink at the target itself is never followed,
//! also not one created between the check and the open.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use agentd_core::ToolSpec;
use serde_json::{Value, json};

use crate::{Tool, ToolContext, ToolError, ToolOutput};

/// Default `max_bytes` of the file tools.
pub(crate) const DEFAULT_MAX_BYTES: u64 = 1_048_576;
/// Entries `list_dir` returns at most.
const MAX_ENTRIES: usize = 1000;

/// Why a path was refused or an operation failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JailError {
    /// The model's fault: it may try another path.
    #[error("{0}")]
    Refused(String),
    /// The machine's fault (disk full, I/O error).
    #[error("{0}")]
    Io(String),
}

impl JailError {
    fn into_tool_error(self, tool: &str) -> ToolError {
        match self {
            JailError::Refused(m) => ToolError::invalid(tool, m),
            JailError::Io(m) => ToolError::failed(tool, m),
        }
    }
}

fn refused(message: impl Into<String>) -> JailError {
    JailError::Refused(message.into())
}

/// Maps an I/O error on `shown` (the path as the model wrote it) to a
/// refusal the model can act on, or an internal failure.
fn io_error(shown: &str, e: &std::io::Error) -> JailError {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::NotFound => refused(format!("{shown:?} does not exist")),
        K::PermissionDenied => refused(format!("permission denied on {shown:?}")),
        K::IsADirectory => refused(format!("{shown:?} is a directory")),
        K::NotADirectory => refused(format!("a parent of {shown:?} is not a directory")),
        K::AlreadyExists => refused(format!("{shown:?} already exists")),
        _ if e.raw_os_error() == Some(libc::ELOOP) => refused(format!(
            "{shown:?} is a symbolic link; the file tools do not follow links"
        )),
        _ => JailError::Io(format!("{shown:?}: {e}")),
    }
}

/// The jail: a canonical root directory.
#[derive(Debug, Clone)]
pub(crate) struct Jail {
    root: PathBuf,
    max_bytes: u64,
}

impl Jail {
    /// Creates `root` if missing and canonicalizes it.
    pub(crate) fn new(root: &Path, max_bytes: u64) -> std::io::Result<Jail> {
        std::fs::create_dir_all(root)?;
        Ok(Jail {
            root: root.canonicalize()?,
            max_bytes,
        })
    }

    /// The argument as a clean relative path: no root, no `..`, no NUL.
    fn relative(&self, arg: &str) -> Result<PathBuf, JailError> {
        if arg.contains('\0') {
            return Err(refused("the path contains a NUL byte"));
        }
        let mut rel = PathBuf::new();
        for component in Path::new(arg).components() {
            match component {
                Component::Normal(part) => rel.push(part),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(refused(format!("{arg:?}: `..` is not allowed in paths")));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(refused(format!(
                        "{arg:?}: absolute paths are not allowed; use a path relative to the \
                         workspace"
                    )));
                }
            }
        }
        Ok(rel)
    }

    /// `path` resolved (symlinks followed) and checked to be inside the root.
    fn inside(&self, path: &Path, shown: &str) -> Result<PathBuf, JailError> {
        let canonical = path.canonicalize().map_err(|e| io_error(shown, &e))?;
        if canonical.starts_with(&self.root) {
            Ok(canonical)
        } else {
            Err(refused(format!(
                "{shown:?} leads outside the workspace (through a symbolic link)"
            )))
        }
    }

    /// An existing file or directory, resolved inside the jail.
    fn existing(&self, arg: &str) -> Result<PathBuf, JailError> {
        let rel = self.relative(arg)?;
        self.inside(&self.root.join(rel), arg)
    }

    fn read(&self, arg: &str) -> Result<Value, JailError> {
        let path = self.existing(arg)?;
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(|e| io_error(arg, &e))?;
        let meta = file.metadata().map_err(|e| io_error(arg, &e))?;
        if !meta.is_file() {
            return Err(refused(format!("{arg:?} is not a regular file")));
        }
        let mut bytes = Vec::new();
        file.take(self.max_bytes.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|e| io_error(arg, &e))?;
        let truncated = bytes.len() as u64 > self.max_bytes;
        bytes.truncate(usize::try_from(self.max_bytes).unwrap_or(usize::MAX));
        Ok(json!({
            "path": arg,
            "content": String::from_utf8_lossy(&bytes),
            "size": meta.len(),
            "truncated": truncated,
        }))
    }

    fn write(&self, arg: &str, content: &str) -> Result<Value, JailError> {
        if content.len() as u64 > self.max_bytes {
            return Err(refused(format!(
                "content is {} bytes, more than the limit of {}",
                content.len(),
                self.max_bytes
            )));
        }
        let rel = self.relative(arg)?;
        let Some(name) = rel.file_name().map(ToOwned::to_owned) else {
            return Err(refused(format!("{arg:?} names no file")));
        };
        let parent_rel = rel.parent().map(Path::to_path_buf).unwrap_or_default();
        // Check the deepest existing ancestor before creating anything, so
        // `create_dir_all` never walks through a link out of the jail.
        let mut existing = parent_rel.clone();
        while std::fs::symlink_metadata(self.root.join(&existing)).is_err() {
            if !existing.pop() {
                break;
            }
        }
        self.inside(&self.root.join(&existing), arg)?;
        std::fs::create_dir_all(self.root.join(&parent_rel)).map_err(|e| io_error(arg, &e))?;
        let parent = self.inside(&self.root.join(&parent_rel), arg)?;
        let target = parent.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&target)
            .map_err(|e| io_error(arg, &e))?;
        file.write_all(content.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| io_error(arg, &e))?;
        Ok(json!({ "path": arg, "bytes_written": content.len() }))
    }

    fn list(&self, arg: &str) -> Result<Value, JailError> {
        let dir = self.existing(arg)?;
        let mut entries = Vec::new();
        let mut truncated = false;
        for entry in std::fs::read_dir(&dir).map_err(|e| io_error(arg, &e))? {
            let entry = entry.map_err(|e| io_error(arg, &e))?;
            if entries.len() == MAX_ENTRIES {
                truncated = true;
                break;
            }
            // symlink_metadata: a link is reported as a link, never followed.
            let meta = entry.metadata().map_err(|e| io_error(arg, &e))?;
            let kind = if meta.is_symlink() {
                "symlink"
            } else if meta.is_dir() {
                "dir"
            } else if meta.is_file() {
                "file"
            } else {
                "other"
            };
            let mut item = json!({
                "name": entry.file_name().to_string_lossy(),
                "type": kind,
            });
            if meta.is_file() {
                item["size"] = json!(meta.len());
            }
            entries.push(item);
        }
        entries.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
        Ok(json!({ "path": arg, "entries": entries, "truncated": truncated }))
    }
}

fn path_arg<'a>(tool: &str, args: &'a Value) -> Result<&'a str, ToolError> {
    args.get("path")
        .and_then(Value::as_str)
        .ok_or_else(|| ToolError::invalid(tool, "expected a string field \"path\""))
}

/// Runs blocking file work off the async threads.
async fn blocking<F>(tool: &str, f: F) -> Result<ToolOutput, ToolError>
where
    F: FnOnce() -> Result<Value, JailError> + Send + 'static,
{
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(v)) => Ok(ToolOutput::Value(v)),
        Ok(Err(e)) => Err(e.into_tool_error(tool)),
        Err(e) => Err(ToolError::failed(tool, format!("file task failed: {e}"))),
    }
}

/// Which file operation a [`FileTool`] performs.
#[derive(Debug, Clone, Copy)]
enum Op {
    Read,
    Write,
    List,
}

/// One of the three jailed file tools.
pub(crate) struct FileTool {
    spec: ToolSpec,
    op: Op,
    jail: Arc<Jail>,
}

impl FileTool {
    /// `read_file`, `write_file` and `list_dir` on one jail.
    pub(crate) fn all(jail: Jail) -> Vec<FileTool> {
        let jail = Arc::new(jail);
        let path = json!({
            "type": "string",
            "description": "A path relative to the workspace directory, e.g. \"notes/a.txt\"."
        });
        vec![
            FileTool {
                spec: ToolSpec {
                    name: "read_file".into(),
                    description: "Reads a text file from the workspace directory.".into(),
                    input_schema: json!({
                        "type": "object",
                        "properties": { "path": path },
                        "required": ["path"],
                        "additionalProperties": false
                    }),
                },
                op: Op::Read,
                jail: jail.clone(),
            },
            FileTool {
                spec: ToolSpec {
                    name: "write_file".into(),
                    description: "Writes (creates or replaces) a text file in the workspace \
                                  directory, creating parent directories."
                        .into(),
                    input_schema: json!({
                        "type": "object",
                        "properties": { "path": path, "content": { "type": "string" } },
                        "required": ["path", "content"],
                        "additionalProperties": false
                    }),
                },
                op: Op::Write,
                jail: jail.clone(),
            },
            FileTool {
                spec: ToolSpec {
                    name: "list_dir".into(),
                    description: "Lists a directory of the workspace (\".\" for its top).".into(),
                    input_schema: json!({
                        "type": "object",
                        "properties": { "path": path },
                        "required": ["path"],
                        "additionalProperties": false
                    }),
                },
                op: Op::List,
                jail,
            },
        ]
    }
}

#[async_trait::async_trait]
impl Tool for FileTool {
    fn spec(&self) -> &ToolSpec {
        &self.spec
    }

    async fn call(&self, _ctx: &ToolContext, args: &Value) -> Result<ToolOutput, ToolError> {
        let tool = self.spec.name.as_str();
        let path = path_arg(tool, args)?.to_owned();
        let jail = self.jail.clone();
        match self.op {
            Op::Read => blocking(tool, move || jail.read(&path)).await,
            Op::List => blocking(tool, move || jail.list(&path)).await,
            Op::Write => {
                let content = args
                    .get("content")
                    .and_then(Value::as_str)
                    .ok_or_else(|| ToolError::invalid(tool, "expected a string field \"content\""))?
                    .to_owned();
                blocking(tool, move || jail.write(&path, &content)).await
            }
        }
    }
}
