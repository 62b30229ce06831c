//! The operational socket: a Unix stream socket, readable and writable by root only, on which
//! `dyntun show …` asks the running gateway one question per connection.
//!
//! Request: one line of JSON, `{"words": ["show", "route"], "json": false}`. Response: the
//! answer text, then the connection closes. The control thread polls the listener between its
//! other work; a slow client cannot stall it for more than the short I/O timeout.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Request {
    pub words: Vec<String>,
    pub json: bool,
}

pub struct ControlSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ControlSocket {
    pub fn bind(path: &Path) -> std::io::Result<ControlSocket> {
        if path.exists() {
            // A stale socket from a run that died; a live gateway would still answer on it.
            if UnixStream::connect(path).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AddrInUse,
                    format!("another dyntun is answering on {}", path.display()),
                ));
            }
            std::fs::remove_file(path)?;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let listener = UnixListener::bind(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        listener.set_nonblocking(true)?;
        Ok(ControlSocket {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// Answers every waiting client with `answer(request)`.
    pub fn serve_pending(&self, mut answer: impl FnMut(&Request) -> String) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = serve_one(stream, &mut answer);
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn serve_one(
    stream: UnixStream,
    answer: &mut impl FnMut(&Request) -> String,
) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    stream.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut line = String::new();
    BufReader::new(stream.try_clone()?.take(64 * 1024)).read_line(&mut line)?;
    let reply = match serde_json::from_str::<Request>(&line) {
        Ok(request) => answer(&request),
        Err(e) => format!("error: malformed request: {e}\n"),
    };
    let mut stream = stream;
    stream.write_all(reply.as_bytes())
}

/// Client side: sends one request and returns the answer.
pub fn ask(path: &Path, request: &Request) -> std::io::Result<String> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut line = serde_json::to_string(request).map_err(std::io::Error::other)?;
    line.push('\n');
    stream.write_all(line.as_bytes())?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    Ok(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_gets_its_answer_and_the_socket_is_root_only() {
        let dir = std::env::temp_dir().join(format!("dyntun-sock-test-{}", std::process::id()));
        let path = dir.join("ctl.sock");
        let socket = ControlSocket::bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let client = {
            let path = path.clone();
            std::thread::spawn(move || {
                ask(
                    &path,
                    &Request {
                        words: vec!["show".into(), "route".into()],
                        json: true,
                    },
                )
            })
        };
        let mut served = false;
        for _ in 0..200 {
            socket.serve_pending(|r| {
                served = true;
                format!("{} {}\n", r.words.join(" "), r.json)
            });
            if served {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(client.join().unwrap().unwrap(), "show route true\n");
        drop(socket);
        assert!(!path.exists());
        let _ = std::fs::remove_dir_all(dir);
    }
}
