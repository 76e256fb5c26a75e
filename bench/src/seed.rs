//! What the benchmarks run on: patients loaded in bulk into the patient service's database
//! (before the system starts), and through the API a front-desk account, doctors and patients
//! the appointment service knows from their events.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use chrono::{NaiveDate, Utc};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::system::ADMIN_PASSWORD;

const FIRST: [&str; 32] = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Frances",
    "John",
    "Margaret",
    "Dennis",
    "Radia",
    "Ken",
    "Sophie",
    "Tim",
    "Hedy",
    "Linus",
    "Katherine",
    "Claude",
    "Mary",
    "Niklaus",
    "Annie",
    "Bjarne",
    "Carol",
    "Guido",
    "Evelyn",
    "James",
    "Joan",
    "Leslie",
    "Lynn",
    "Robin",
    "Shafi",
    "Tony",
];
const LAST: [&str; 64] = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Backus",
    "Hamilton",
    "Ritchie",
    "Perlman",
    "Thompson",
    "Wilson",
    "Berners",
    "Lamarr",
    "Torvalds",
    "Johnson",
    "Shannon",
    "Keller",
    "Wirth",
    "Easley",
    "Stroustrup",
    "Shaw",
    "Rossum",
    "Boyd",
    "Gosling",
    "Clarke",
    "Lamport",
    "Conway",
    "Milner",
    "Goldwasser",
    "Hoare",
    "Abbott",
    "Baker",
    "Carter",
    "Dawson",
    "Ellis",
    "Fisher",
    "Garcia",
    "Harris",
    "Irving",
    "Jensen",
    "Khan",
    "Lopez",
    "Moreau",
    "Nakamura",
    "Olsen",
    "Patel",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Ueda",
    "Vargas",
    "Weber",
    "Xu",
    "Young",
    "Zimmer",
    "Novak",
    "Kowalski",
    "Haddad",
    "Okafor",
    "Silva",
    "Ivanova",
];

/// The name of bulk patient `n`: 2,048 first and last name pairs, spread evenly.
fn bulk_name(n: u64) -> String {
    let first = FIRST[(n % FIRST.len() as u64) as usize];
    let last = LAST[((n / FIRST.len() as u64) % LAST.len() as u64) as usize];
    format!("{first} {last}")
}

/// Search queries a front desk types: the start of a first name and a surname's initial. Each
/// initial starts five surnames, so every query matches about 24 patients at 10,000 (and 2,400
/// at 1,000,000): a full page of 20 at every size, so only the table grows between sizes, not
/// the answer (a shorter answer is cheaper, mostly by its audit entries, one per patient).
pub fn queries() -> Vec<String> {
    const INITIALS: [char; 3] = ['l', 'h', 's'];
    FIRST
        .iter()
        .enumerate()
        .map(|(i, first)| {
            format!(
                "{}%20{}",
                &first[..3.min(first.len())].to_lowercase(),
                INITIALS[i % INITIALS.len()]
            )
        })
        .collect()
}

/// Adds `count` patients after the `existing` ones straight into the patient service's database
/// in `data_dir` (creating it if needed), as if registered; returns their ids. They have no
/// events: they are for reads (by id, lists, search), which only the patient service answers.
pub async fn bulk_patients(
    data_dir: &Path,
    existing: u64,
    count: u64,
) -> anyhow::Result<Vec<Uuid>> {
    std::fs::create_dir_all(data_dir)?;
    let url = kit::config::sqlite_url_in(data_dir, "patient");
    let pool = kit::sqlite::open(&url, &patient_service::store::MIGRATOR)
        .await
        .context("open the patient database to seed it")?;
    let now = kit::events::format_timestamp(Utc::now());
    let mut ids = Vec::with_capacity(count as usize);
    const BATCH: u64 = 20_000;
    let mut n = existing;
    while n < existing + count {
        let end = (n + BATCH).min(existing + count);
        let mut tx = kit::sqlite::begin_write(&pool).await?;
        for i in n..end {
            let id = Uuid::now_v7();
            let name = bulk_name(i);
            let digits = format!("8{i:08}");
            let mrn = format!(
                "{digits}{}",
                patient_service::domain::luhn_check_digit(&digits)
            );
            let birth = NaiveDate::from_ymd_opt(
                1930 + (i % 90) as i32,
                1 + (i % 12) as u32,
                1 + (i % 28) as u32,
            )
            .expect("a valid date");
            sqlx::query(
                "INSERT INTO patients (id, mrn, name, birth_date, sex, phone, email, address, version, created_at, updated_at, deleted_at)
                 VALUES ($1, $2, $3, $4, $5, $6, NULL, NULL, 1, $7, $7, NULL)",
            )
            .bind(id.to_string())
            .bind(mrn)
            .bind(&name)
            .bind(birth.to_string())
            .bind(["female", "male", "other", "unknown"][(i % 4) as usize])
            .bind(format!("+1 555 {:07}", i % 10_000_000))
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            for word in kit::listing::name_words(&name) {
                sqlx::query(
                    "INSERT OR IGNORE INTO patient_name_words (word, patient_id) VALUES ($1, $2)",
                )
                .bind(word)
                .bind(id.to_string())
                .execute(&mut *tx)
                .await?;
            }
            ids.push(id);
        }
        tx.commit().await?;
        n = end;
    }
    sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
        .execute(&pool)
        .await?;
    pool.close().await;
    Ok(ids)
}

/// A client of the running system's API.
pub struct Api {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    pub async fn login(base: &str, username: &str, password: &str) -> anyhow::Result<Api> {
        let http = reqwest::Client::new();
        let answer: Value = http
            .post(format!("{base}/auth/login"))
            .json(&json!({"username": username, "password": password}))
            .send()
            .await?
            .error_for_status()
            .context("login")?
            .json()
            .await?;
        let token = answer["access_token"]
            .as_str()
            .context("no access_token")?
            .to_owned();
        Ok(Api {
            http,
            base: base.to_owned(),
            token,
        })
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// POSTs `body` to `path` and returns the created item; anything but 201 is an error.
    pub async fn create(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        let answer = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await?;
        let status = answer.status();
        let text = answer.text().await?;
        if status.as_u16() != 201 {
            bail!("POST {path}: {status}: {text}");
        }
        Ok(serde_json::from_str(&text)?)
    }
}

/// The front desk the load runs as, with the doctors and patients it books.
pub struct FrontDesk {
    pub username: String,
    pub password: String,
    pub api: Api,
    /// (doctor id, patient id): each doctor and each patient in exactly one pair.
    pub pairs: Vec<(Uuid, Uuid)>,
}

/// Creates a receptionist account, `pairs` doctors and `pairs` patients through the API, and
/// waits until the appointment service's read-model knows them all (from their events).
pub async fn front_desk(base: &str, pairs: usize) -> anyhow::Result<FrontDesk> {
    let admin = Api::login(base, "admin", ADMIN_PASSWORD).await?;
    let username = "bench.desk".to_owned();
    let password = "bench-desk-password-0001".to_owned();
    admin
        .create(
            "/api/staff",
            &json!({"name": "Bench Desk", "role": "receptionist", "username": username, "password": password}),
        )
        .await?;
    let api = Api::login(base, &username, &password).await?;
    let mut ids = Vec::with_capacity(pairs);
    for i in 0..pairs {
        let doctor = admin
            .create(
                "/api/staff",
                &json!({"name": format!("Doctor {i}"), "role": "doctor", "specialization": "General practice"}),
            )
            .await?;
        let patient = api
            .create(
                "/api/patients",
                &json!({"name": format!("Booked Patient {i}"), "birth_date": "1980-01-01", "sex": "unknown"}),
            )
            .await?;
        ids.push((id_of(&doctor)?, id_of(&patient)?));
    }
    // The read-model has every pair once the last one can be booked (years from now, out of
    // every run's range).
    let (doctor, patient) = *ids.last().context("at least one pair")?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let booked = api
            .create(
                "/api/appointments",
                &json!({"patient_id": patient, "doctor_id": doctor, "start": "2099-01-01T09:00:00Z"}),
            )
            .await;
        match booked {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(error) => {
                return Err(error.context("the appointment service never knew the seeded people"));
            }
        }
    }
    Ok(FrontDesk {
        username,
        password,
        api,
        pairs: ids,
    })
}

fn id_of(item: &Value) -> anyhow::Result<Uuid> {
    Ok(item["id"].as_str().context("no id")?.parse()?)
}

/// Writes what `load.lua` reads into `dir`.
pub fn write_fixtures(dir: &Path, desk: &FrontDesk, patient_ids: &[Uuid]) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("token"), desk.api.token())?;
    std::fs::write(
        dir.join("login"),
        json!({"username": desk.username, "password": desk.password}).to_string(),
    )?;
    // In a fixed random order, so reads land all over the table rather than in registration order.
    let mut sample: Vec<Uuid> = patient_ids.to_vec();
    shuffle(&mut sample);
    sample.truncate(100_000);
    let lines: String = sample.iter().map(|id| format!("{id}\n")).collect();
    std::fs::write(dir.join("patient_ids"), lines)?;
    std::fs::write(dir.join("queries"), queries().join("\n") + "\n")?;
    let pairs: String = desk
        .pairs
        .iter()
        .map(|(doctor, patient)| format!("{doctor} {patient}\n"))
        .collect();
    std::fs::write(dir.join("pairs"), pairs)?;
    Ok(())
}

/// Fisher-Yates with a fixed xorshift sequence: the same order on every run.
fn shuffle<T>(items: &mut [T]) {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..items.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        items.swap(i, (state % (i as u64 + 1)) as usize);
    }
}

/// The front desk of a system seeded before (its account and people exist already).
pub async fn returning_front_desk(base: &str) -> anyhow::Result<FrontDesk> {
    let username = "bench.desk".to_owned();
    let password = "bench-desk-password-0001".to_owned();
    let api = Api::login(base, &username, &password).await?;
    Ok(FrontDesk {
        username,
        password,
        api,
        pairs: Vec::new(),
    })
}
