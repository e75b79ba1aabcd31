//! `certs`: a CA and a serving certificate for the webhook's Service, written as PEM files,
//! with the `caBundle` printed on stdout so that a script can paste it into the webhook
//! configuration (`caBundle: $(openclaw-admission certs ...)`). The summary goes to stderr.

use crate::certs::{self, CertsError};
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for ca.crt, ca.key, tls.crt, tls.key (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out_dir: PathBuf,
    /// DNS names of the serving certificate, e.g. `openclaw-admission.openclaw-system.svc`.
    #[arg(long = "dns", value_name = "NAME")]
    pub dns: Vec<String>,
    /// IP addresses of the serving certificate, e.g. `127.0.0.1` for a local API server.
    #[arg(long = "ip", value_name = "IP")]
    pub ip: Vec<IpAddr>,
    /// Validity of both certificates, in days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
}

fn generate(args: &Args) -> Result<(String, Vec<PathBuf>), CertsError> {
    let ca = certs::generate_ca("openclaw-admission CA", args.days)?;
    let leaf = certs::issue_serving(&ca, &args.dns, &args.ip, args.days)?;
    let written = certs::write_files(&args.out_dir, &ca, &leaf)?;
    Ok((certs::ca_bundle(&ca.cert_pem), written))
}

pub fn run(args: Args) -> ExitCode {
    match generate(&args) {
        Ok((bundle, written)) => {
            println!("{bundle}");
            let names: Vec<String> = args
                .dns
                .iter()
                .cloned()
                .chain(args.ip.iter().map(|ip| ip.to_string()))
                .collect();
            eprintln!(
                "serving certificate for {} valid {} days, signed by a new CA",
                names.join(", "),
                args.days
            );
            for p in written {
                eprintln!("  wrote {}", p.display());
            }
            eprintln!("caBundle (base64 of ca.crt) printed on stdout");
            ExitCode::SUCCESS
        }
        Err(e @ (CertsError::NoNames | CertsError::BadName { .. } | CertsError::BadDays(_))) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
