// @generated automatically by Diesel CLI.

diesel::table! {
    idempotency_keys (user_id, key) {
        user_id -> Uuid,
        key -> Text,
        fingerprint -> Bytea,
        resource_id -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    order_items (order_id, product_key) {
        order_id -> Uuid,
        line_no -> Int2,
        product_key -> Text,
        product_name -> Text,
        unit_price -> Numeric,
        quantity -> Int4,
        subtotal -> Numeric,
    }
}

diesel::table! {
    orders (id) {
        id -> Uuid,
        customer_name -> Text,
        waiter_id -> Uuid,
        status -> Text,
        total_price -> Numeric,
        amount_paid -> Numeric,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    payments (id) {
        id -> Uuid,
        order_id -> Uuid,
        amount -> Numeric,
        method -> Text,
        recorded_by -> Uuid,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    sales_rollup (grain, bucket, product_key) {
        grain -> Text,
        bucket -> Timestamptz,
        product_key -> Text,
        product_name -> Text,
        total_quantity -> Int8,
        total_price -> Numeric,
    }
}

diesel::table! {
    sales_rollup_state (id) {
        id -> Bool,
        minutes_until -> Nullable<Timestamptz>,
        hours_until -> Nullable<Timestamptz>,
        days_until -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    text_keys (id) {
        id -> Bool,
        version -> Int4,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        email_key -> Text,
        name -> Text,
        role -> Text,
        password_hash -> Text,
        created_at -> Timestamptz,
    }
}

diesel::joinable!(idempotency_keys -> users (user_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(orders -> users (waiter_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(payments -> users (recorded_by));

diesel::allow_tables_to_appear_in_same_query!(
    idempotency_keys,
    order_items,
    orders,
    payments,
    sales_rollup,
    sales_rollup_state,
    text_keys,
    users,
);
