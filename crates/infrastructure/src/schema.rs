// @generated automatically by Diesel CLI.

diesel::table! {
    business_day_sales (location_id, business_date, product_key) {
        location_id -> Uuid,
        business_date -> Date,
        product_key -> Text,
        total_quantity -> Int8,
        total_price -> Numeric,
    }
}

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
    kitchen_events (location_id, id) {
        location_id -> Uuid,
        id -> Int8,
        ticket_id -> Uuid,
        kind -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    kitchen_streams (location_id) {
        location_id -> Uuid,
        last_event -> Int8,
    }
}

diesel::table! {
    kitchen_ticket_numbers (location_id, business_date) {
        location_id -> Uuid,
        business_date -> Date,
        last_number -> Int4,
    }
}

diesel::table! {
    kitchen_tickets (id) {
        id -> Uuid,
        order_id -> Uuid,
        location_id -> Uuid,
        business_date -> Date,
        number -> Int4,
        status -> Text,
        created_at -> Timestamptz,
        ready_at -> Nullable<Timestamptz>,
        served_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    locations (id) {
        id -> Uuid,
        name -> Text,
        name_key -> Text,
        time_zone -> Text,
        business_day_start -> Time,
        tax_rate -> Numeric,
        prices_include_tax -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    menu_categories (id) {
        id -> Uuid,
        name -> Text,
        name_key -> Text,
        position -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    menu_item_prices (menu_item_id, valid_from) {
        menu_item_id -> Uuid,
        price -> Numeric,
        valid_from -> Timestamptz,
        valid_to -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    menu_items (id) {
        id -> Uuid,
        name -> Text,
        name_key -> Text,
        category_id -> Uuid,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    menu_version (id) {
        id -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    order_items (order_id, line_no) {
        order_id -> Uuid,
        line_no -> Int2,
        product_key -> Text,
        product_name -> Text,
        unit_price -> Numeric,
        quantity -> Int4,
        subtotal -> Numeric,
        menu_item_id -> Nullable<Uuid>,
        category_id -> Nullable<Uuid>,
        category -> Nullable<Text>,
        note -> Nullable<Text>,
        added_in -> Int4,
        ticket_id -> Nullable<Uuid>,
        voided_at -> Nullable<Timestamptz>,
        voided_by -> Nullable<Uuid>,
        void_reason -> Nullable<Text>,
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
        location_id -> Uuid,
        business_date -> Date,
        version -> Int4,
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
    product_names (product_key) {
        product_key -> Text,
        product_name -> Text,
    }
}

diesel::table! {
    sales_rollup (grain, location_id, bucket, product_key) {
        grain -> Text,
        location_id -> Uuid,
        bucket -> Timestamptz,
        product_key -> Text,
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
    sold_out_items (location_id, menu_item_id) {
        location_id -> Uuid,
        menu_item_id -> Uuid,
        marked_by -> Uuid,
        since -> Timestamptz,
    }
}

diesel::table! {
    staff_directory (id) {
        id -> Bool,
        version -> Int8,
    }
}

diesel::table! {
    text_keys (id) {
        id -> Bool,
        version -> Int4,
    }
}

diesel::table! {
    user_locations (user_id, location_id) {
        user_id -> Uuid,
        location_id -> Uuid,
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
diesel::joinable!(kitchen_events -> kitchen_tickets (ticket_id));
diesel::joinable!(kitchen_streams -> locations (location_id));
diesel::joinable!(kitchen_ticket_numbers -> locations (location_id));
diesel::joinable!(kitchen_tickets -> locations (location_id));
diesel::joinable!(kitchen_tickets -> orders (order_id));
diesel::joinable!(menu_item_prices -> menu_items (menu_item_id));
diesel::joinable!(menu_items -> menu_categories (category_id));
diesel::joinable!(order_items -> orders (order_id));
diesel::joinable!(orders -> locations (location_id));
diesel::joinable!(orders -> users (waiter_id));
diesel::joinable!(payments -> orders (order_id));
diesel::joinable!(payments -> users (recorded_by));
diesel::joinable!(sold_out_items -> locations (location_id));
diesel::joinable!(sold_out_items -> menu_items (menu_item_id));
diesel::joinable!(sold_out_items -> users (marked_by));
diesel::joinable!(user_locations -> locations (location_id));
diesel::joinable!(user_locations -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    business_day_sales,
    idempotency_keys,
    kitchen_events,
    kitchen_streams,
    kitchen_ticket_numbers,
    kitchen_tickets,
    locations,
    menu_categories,
    menu_item_prices,
    menu_items,
    menu_version,
    order_items,
    orders,
    payments,
    product_names,
    sales_rollup,
    sales_rollup_state,
    sold_out_items,
    staff_directory,
    text_keys,
    user_locations,
    users,
);
