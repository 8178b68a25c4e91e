//! `ReportRepository` on PostgreSQL.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Numeric, Text, Timestamptz, Uuid as SqlUuid};
use rust_decimal::Decimal;

use application::{ProductSales, ReportRange, ReportRepository, StoreError};
use domain::UserId;

use crate::db::{Database, store_error};

#[derive(Debug, QueryableByName)]
struct SalesRow {
    #[diesel(sql_type = Text)]
    product_name: String,
    #[diesel(sql_type = BigInt)]
    total_quantity: i64,
    #[diesel(sql_type = Numeric)]
    total_price: Decimal,
}

#[derive(Debug, Clone)]
pub struct PgReportRepository {
    db: Database,
}

impl PgReportRepository {
    pub fn new(db: Database) -> Self {
        Self { db }
    }
}

/// Sales per product key over the orders created in the range, cancelled ones left out. The
/// spelling shown is the smallest one in byte order, so it is the same on every run.
const SALES_SQL: &str = r#"
SELECT min(i.product_name COLLATE "C") AS product_name,
       sum(i.quantity)::bigint AS total_quantity,
       sum(i.subtotal) AS total_price
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2
  AND o.status <> 'cancelled'
  AND ($3::uuid IS NULL OR o.waiter_id = $3)
GROUP BY i.product_key
"#;

impl ReportRepository for PgReportRepository {
    fn product_sales(
        &self,
        range: &ReportRange,
        waiter: Option<UserId>,
    ) -> Result<Vec<ProductSales>, StoreError> {
        let mut conn = self.db.conn()?;
        let rows: Vec<SalesRow> = diesel::sql_query(SALES_SQL)
            .bind::<Timestamptz, _>(range.start)
            .bind::<Timestamptz, _>(range.end)
            .bind::<Nullable<SqlUuid>, _>(waiter.map(|w| w.0))
            .load(&mut conn)
            .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| ProductSales {
                product_name: r.product_name,
                total_quantity: r.total_quantity,
                total_price: r.total_price,
            })
            .collect())
    }
}
