//! Every label of the console in Chinese and English. A label is a [`T`];
//! its two texts are one `match` arm, so a label without both cannot
//! compile.

use super::config::Language;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum T {
    Title,
    Overview,
    Lamps,
    Logout,
    Login,
    User,
    Password,
    LoginFailed,
    TooManyAttempts,
    City,
    District,
    Cabinet,
    RtuInstallationRatio,
    RtuOnlineRate,
    SlcControlShare,
    SlcOnlineRate,
    LightingRate,
    FacilityIntactRate,
    ActiveAlarms,
    Emergency,
    Serious,
    Ordinary,
    At,
    Lamp,
    Circuit,
    Online,
    Offline,
    Any,
    Search,
    Filter,
    Previous,
    Next,
    Total,
    NoSlc,
    Relay,
    On,
    Off,
    DimLevel,
    Voltage,
    Current,
    Power,
    PowerFactor,
    Energy,
    BurningHours,
    Faults,
    LastSeen,
    Controls,
    Dim,
    Command,
    Queued,
    Written,
    Confirmed,
    Failed,
    InProgress,
    Done,
    NotFound,
    Forbidden,
    BadRequest,
    Internal,
    Back,
    Language,
}

impl T {
    /// (Chinese, English).
    pub(super) const fn texts(self) -> (&'static str, &'static str) {
        match self {
            T::Title => ("路灯网关控制台", "Street-lighting console"),
            T::Overview => ("总览", "Overview"),
            T::Lamps => ("灯具", "Lamps"),
            T::Logout => ("退出登录", "Log out"),
            T::Login => ("登录", "Log in"),
            T::User => ("用户名", "User name"),
            T::Password => ("密码", "Password"),
            T::LoginFailed => ("用户名或密码错误", "Wrong user name or password"),
            T::TooManyAttempts => (
                "登录失败次数过多，请15分钟后再试",
                "Too many failed logins; try again in 15 minutes",
            ),
            T::City => ("全市", "City"),
            T::District => ("区域", "District"),
            T::Cabinet => ("配电箱", "Cabinet"),
            T::RtuInstallationRatio => ("终端安装率", "RTU installation ratio"),
            T::RtuOnlineRate => ("终端在线率", "RTU online rate"),
            T::SlcControlShare => ("单灯控制率", "Single-lamp control share"),
            T::SlcOnlineRate => ("单灯在线率", "Single-lamp online rate"),
            T::LightingRate => ("亮灯率", "Lighting rate"),
            T::FacilityIntactRate => ("设施完好率", "Facility intact rate"),
            T::ActiveAlarms => ("当前告警", "Active alarms"),
            T::Emergency => ("紧急", "Emergency"),
            T::Serious => ("重大", "Serious"),
            T::Ordinary => ("一般", "Ordinary"),
            T::At => ("时间", "At"),
            T::Lamp => ("灯具编号", "Lamp"),
            T::Circuit => ("回路", "Circuit"),
            T::Online => ("在线", "Online"),
            T::Offline => ("离线", "Offline"),
            T::Any => ("全部", "Any"),
            T::Search => ("按编号搜索", "Search by id"),
            T::Filter => ("筛选", "Filter"),
            T::Previous => ("上一页", "Previous"),
            T::Next => ("下一页", "Next"),
            T::Total => ("共", "Total"),
            T::NoSlc => ("无单灯控制器", "No single-lamp controller"),
            T::Relay => ("继电器", "Relay"),
            T::On => ("开", "On"),
            T::Off => ("关", "Off"),
            T::DimLevel => ("调光 (%)", "Dim level (%)"),
            T::Voltage => ("电压 (V)", "Voltage (V)"),
            T::Current => ("电流 (A)", "Current (A)"),
            T::Power => ("功率 (W)", "Power (W)"),
            T::PowerFactor => ("功率因数", "Power factor"),
            T::Energy => ("电能 (kWh)", "Energy (kWh)"),
            T::BurningHours => ("累计亮灯 (h)", "Burning hours (h)"),
            T::Faults => ("故障标志", "Fault flags"),
            T::LastSeen => ("最近通信", "Last seen"),
            T::Controls => ("控制", "Controls"),
            T::Dim => ("调光", "Dim"),
            T::Command => ("命令", "Command"),
            T::Queued => ("排队", "Queued"),
            T::Written => ("已下发", "Written"),
            T::Confirmed => ("已确认", "Confirmed"),
            T::Failed => ("失败", "Failed"),
            T::InProgress => ("执行中", "In progress"),
            T::Done => ("已完成", "Done"),
            T::NotFound => ("未找到", "Not found"),
            T::Forbidden => ("无权执行此操作", "Not allowed"),
            T::BadRequest => ("请求无效", "Bad request"),
            T::Internal => ("内部错误", "Internal error"),
            T::Back => ("返回", "Back"),
            T::Language => ("English", "中文"),
        }
    }

    pub(super) fn get(self, lang: Language) -> &'static str {
        match lang {
            Language::Zh => self.texts().0,
            Language::En => self.texts().1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_a_chinese_and_an_english_text() {
        // The language switch shows the other language's own name.
        let all = [
            T::Title,
            T::Overview,
            T::Lamps,
            T::LightingRate,
            T::FacilityIntactRate,
            T::Confirmed,
            T::NotFound,
            T::Dim,
            T::Emergency,
            T::SlcControlShare,
        ];
        let cjk = |s: &str| s.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c));
        for t in all {
            let (zh, en) = t.texts();
            assert!(cjk(zh) && !cjk(en), "{t:?}: {zh} / {en}");
        }
        assert_eq!(T::LightingRate.get(Language::Zh), "亮灯率");
        assert_eq!(T::Language.get(Language::Zh), "English");
    }
}
