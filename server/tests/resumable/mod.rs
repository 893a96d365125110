//! A resumable-upload client written from the text of draft-ietf-httpbis-resumable-upload-15 (and the
//! interop versions before it), not from the agent's code: what the protocol tests speak.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

pub mod fixtures;

use reqwest::header::HeaderMap;

/// An answer: status, fields, body.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Answer {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn offset(&self) -> Option<u64> {
        self.field("upload-offset").map(|v| v.parse().unwrap())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("{}: {}", self.status, self.body))
    }

    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// A client of one interop version (`None`: the field is left out, as the final RFC's clients do).
#[derive(Debug, Clone)]
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
    pub token: String,
    pub version: Option<u8>,
}

impl Client {
    pub fn new(base: &str, token: &str, version: Option<u8>) -> Client {
        Client {
            // A fresh connection per request: a cutting proxy cuts exactly one request.
            http: reqwest::Client::builder()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            base: base.to_owned(),
            token: token.to_owned(),
            version,
        }
    }

    /// The completion field of this version: `Upload-Complete`, or `Upload-Incomplete` (inverted) before 5.
    fn completion(&self, complete: bool) -> (&'static str, &'static str) {
        match self.version {
            Some(v) if v < 5 => ("upload-incomplete", if complete { "?0" } else { "?1" }),
            _ => ("upload-complete", if complete { "?1" } else { "?0" }),
        }
    }

    /// Whether an answer says the upload is complete, in this version's words.
    pub fn says_complete(&self, answer: &Answer) -> Option<bool> {
        match self.version {
            Some(v) if v < 5 => answer.field("upload-incomplete").map(|v| v == "?0"),
            _ => answer.field("upload-complete").map(|v| v == "?1"),
        }
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let url = if url.starts_with("http") {
            url.to_owned()
        } else {
            format!("{}{url}", self.base)
        };
        let mut request = self.http.request(method, url).bearer_auth(&self.token);
        if let Some(v) = self.version {
            request = request.header("upload-draft-interop-version", v.to_string());
        }
        request
    }

    async fn send(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await?;
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Upload creation (draft section "Upload Creation"): POST to the upload route with the first content.
    pub async fn create(
        &self,
        path: &str,
        content: Vec<u8>,
        complete: bool,
        extra: &[(&str, String)],
    ) -> Result<Answer, reqwest::Error> {
        let (name, value) = self.completion(complete);
        let mut request = self
            .request(reqwest::Method::POST, path)
            .header(name, value)
            .body(content);
        for (n, v) in extra {
            request = request.header(*n, v);
        }
        Self::send(request).await
    }

    /// Offset retrieval ("Offset Retrieval"): HEAD on the upload resource.
    pub async fn offset(&self, url: &str) -> Result<Answer, reqwest::Error> {
        Self::send(self.request(reqwest::Method::HEAD, url)).await
    }

    /// Upload append ("Upload Append"): PATCH at `offset`.
    pub async fn append(
        &self,
        url: &str,
        offset: u64,
        content: Vec<u8>,
        complete: bool,
        extra: &[(&str, String)],
    ) -> Result<Answer, reqwest::Error> {
        let (name, value) = self.completion(complete);
        let mut request = self
            .request(reqwest::Method::PATCH, url)
            .header("upload-offset", offset.to_string())
            .header(name, value)
            .header("content-type", "application/partial-upload")
            .body(content);
        for (n, v) in extra {
            request = request.header(*n, v);
        }
        Self::send(request).await
    }

    /// Upload cancellation ("Upload Cancellation"): DELETE.
    pub async fn cancel(&self, url: &str) -> Result<Answer, reqwest::Error> {
        Self::send(self.request(reqwest::Method::DELETE, url)).await
    }

    /// OPTIONS, for `Upload-Limit`.
    pub async fn options(&self, url: &str) -> Result<Answer, reqwest::Error> {
        Self::send(self.request(reqwest::Method::OPTIONS, url)).await
    }

    /// Sends `data` to `path` resumably: creation with an empty content (so the upload URL is known before
    /// any byte can be lost), then appends from the offset the server reports, after every failure, until
    /// complete. `before_append` runs before each append with the bytes it will send (a test arms its proxy
    /// there). Returns the final answer and the number of appends.
    pub async fn upload_resuming(
        &self,
        path: &str,
        data: &[u8],
        mut before_append: impl FnMut(u64),
    ) -> (Answer, u32) {
        let created = loop {
            if let Ok(answer) = self.create(path, Vec::new(), false, &[]).await {
                break answer;
            }
        };
        assert_eq!(created.status, 201, "{}", created.body);
        let url = created.field("location").unwrap().to_owned();
        let mut offset = 0;
        let mut appends = 0;
        loop {
            before_append(data.len() as u64 - offset);
            appends += 1;
            match self
                .append(&url, offset, data[offset as usize..].to_vec(), true, &[])
                .await
            {
                Ok(answer) if answer.status == 200 => return (answer, appends),
                Ok(answer) => assert!(
                    matches!(answer.status, 400 | 408 | 409),
                    "{}: {}",
                    answer.status,
                    answer.body
                ),
                Err(_) => {}
            }
            let head = loop {
                if let Ok(head) = self.offset(&url).await {
                    break head;
                }
            };
            assert_eq!(head.status, 204, "{}", head.body);
            if self.says_complete(&head) == Some(true) {
                // The cut took the final answer, not the completion.
                return (head, appends);
            }
            let now = head.offset().unwrap();
            assert!(now >= offset, "the offset never goes back: {offset} then {now}");
            offset = now;
        }
    }
}

/// An HTTP/1 connection spoken by hand, to see what a library client hides: interim (1xx) answers, and
/// where one answer ends and the next begins on a kept-alive connection.
pub struct Raw {
    stream: tokio::io::BufReader<tokio::net::TcpStream>,
}

/// One answer's head: status and fields (names lower-cased).
#[derive(Debug)]
pub struct Head {
    pub status: u16,
    pub fields: Vec<(String, String)>,
}

impl Head {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

impl Raw {
    /// Connects to the server at `base` (`http://host:port`).
    pub async fn connect(base: &str) -> Raw {
        let address = base.trim_start_matches("http://").trim_end_matches('/');
        let stream = tokio::net::TcpStream::connect(address).await.unwrap();
        Raw {
            stream: tokio::io::BufReader::new(stream),
        }
    }

    /// Sends a request head (`version` is `HTTP/1.1` or `HTTP/1.0`) and the first `content` bytes.
    pub async fn send(&mut self, request_line: &str, fields: &[(&str, String)], content: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        let mut head = format!("{request_line}\r\nhost: localhost\r\n");
        for (name, value) in fields {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let stream = self.stream.get_mut();
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(content).await.unwrap();
        stream.flush().await.unwrap();
    }

    /// Reads the next answer's head (interim or final), up to its blank line; panics after 30 s without one.
    pub async fn head(&mut self) -> Head {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.read_head())
            .await
            .expect("no answer within 30 s")
    }

    async fn read_head(&mut self) -> Head {
        use tokio::io::AsyncBufReadExt as _;
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not a status line: {line:?}"));
        let mut fields = Vec::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await.unwrap();
            let field = line.trim_end_matches(['\r', '\n']);
            if field.is_empty() {
                break;
            }
            let (name, value) = field.split_once(':').unwrap();
            fields.push((name.to_ascii_lowercase(), value.trim().to_owned()));
        }
        Head { status, fields }
    }

    /// Reads a final answer's content of `Content-Length` bytes.
    pub async fn content(&mut self, head: &Head) -> Vec<u8> {
        use tokio::io::AsyncReadExt as _;
        let length: usize = head.field("content-length").map_or(0, |l| l.parse().unwrap());
        let mut content = vec![0; length];
        self.stream.read_exact(&mut content).await.unwrap();
        content
    }
}
