//! `palisade migrate`: applies the database migrations and exits.

use super::DbArgs;

/// Opens the database (which applies the migrations) and reports it.
///
/// # Errors
/// The database cannot be opened or migrated.
pub fn run(db: &DbArgs) -> anyhow::Result<()> {
    super::runtime()?.block_on(async move {
        crate::protection::open(&db.url(), 1).await?;
        println!("migrations applied");
        Ok(())
    })
}
